/**
 * The secure framing layer: frame codec, Noise secure channel, identities and
 * X.509 certificates, multiplexed sessions.
 *
 * @packageDocumentation
 */
export {};
