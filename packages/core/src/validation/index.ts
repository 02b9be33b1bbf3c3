export { MAX_TIMER_MS, SseOptionRules, validateOptions, type OptionRule } from './options-schema.js';
