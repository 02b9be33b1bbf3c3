export * from './memory.transport.js';
