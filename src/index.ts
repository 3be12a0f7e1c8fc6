export { type Endpoints, Scorecar, type ScorecarOptions } from './app.ts';
export { type Config, ConfigError, loadConfig } from './config/index.ts';
