/**
 * The reliable multicast updater (design, system 2): the wire (codecs,
 * signatures, manifest, names, permissions — ./wire) and the sender and
 * receiver engines.
 *
 * @packageDocumentation
 */
export * from './wire/index.js';
