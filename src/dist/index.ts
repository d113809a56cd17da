// dist: the rendezvous store, authenticated transports and collectives on flat Float32Array
// buffers. Start with initProcessGroup(); see process-group.ts for the collectives.
export { initProcessGroup, defaultHostId, DEFAULT_TIMEOUT_MS, DEFAULT_SMALL_MESSAGE_BYTES, DEFAULT_SEGMENT_BYTES, DEFAULT_MAX_FRAME_BYTES, type InitOptions } from './init.js';
export { ProcessGroup, type CollectiveOptions } from './process-group.js';
export { chunkRange } from './chunk.js';
export { type ReduceOp, sumInto, maxInto } from './reduce.js';
export { StoreServer, StoreClient, STORE_MAX_PAYLOAD, type StoreServerOptions, type StoreClientOptions } from './store.js';
export { parseSecret, AuthError } from './auth.js';
export { PeerLostError } from './transport.js';
export { FrameError, FrameReader, encodeFrame, encodeHeader, decodeHeader, FrameType, HEADER_BYTES, FRAME_MAGIC, FRAME_VERSION } from './frame.js';
