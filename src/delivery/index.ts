/**
 * gatesock/delivery — reserved subpath. Its public surface arrives with the issue
 * that builds it (see DESIGN.md, "Layers and folders"); importing it today
 * yields an empty module.
 *
 * @packageDocumentation
 */
export {};
