export { MAX_TIMER_MS, SseOptionRules, describeValue, nearest, validateOptions, type OptionRule } from './options-schema.js';
