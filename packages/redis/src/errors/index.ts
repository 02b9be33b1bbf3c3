export * from './redis-unavailable.error.js';
