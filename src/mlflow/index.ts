// MLflow compatibility: MLflow's REST API for experiments and scorers on the admin port (so
// MLflow's own Python SDK drives scorecar's registry), the mapping between MLflow's serialized
// scorers and scorecar definitions, the store of MLflow's numeric experiment ids, and MLflow as a
// destination (exporters.mlflow: traces and Feedback).
export {
  ASSESSMENT_ID_KEY,
  feedbackJson,
  MLFLOW_FEEDBACK_KEYS,
  MlflowExporter,
  type MlflowExporterOptions,
  mlflowTraceId,
} from './exporter.ts';
export {
  MLFLOW_SERVER_VERSION,
  type MlflowExtraRoute,
  MlflowRest,
  type MlflowRestOptions,
  mlflowError,
  scorerIdOf,
  serializedScorerOf,
} from './rest.ts';
export { definitionFromMlflow, definitionToMlflow, MLFLOW_COMPAT_VERSION, type MappingOptions, mapModel, pythonSource } from './serialized.ts';
export { MLFLOW_DB_FILE, type MlflowExperiment, MlflowStore } from './store.ts';
export { assessmentJson, type MlflowTracingOptions, mlflowTracingRoutes } from './tracing.ts';
