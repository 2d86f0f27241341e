export { CipherState } from './cipher-state.js';
export { HandshakeState, NOISE_MAX_MESSAGE, type HandshakeOptions, type HandshakeResult, type KeyPair } from './handshake-state.js';
export { parsePattern, type HandshakePattern, type Token } from './patterns.js';
