// Archival routes: which experiments are archived to Delta tables, turned on and off at run time.
import { z } from 'zod';
import type { Archival, ArchiveStatus } from '../archive/index.ts';
import { ScorecarError } from '../util/index.ts';
import { type AdminRoute, defineRoute } from './routes.ts';
import { type JsonSchema, schemaRef } from './schemas.ts';

/** What the routes need of the archive stage (src/archive Archiver). */
export interface ArchivalService {
  list(): Archival[];
  get(experimentId: string): Archival | undefined;
  enable(experimentId: string, tablePath?: string): Promise<Archival>;
  disable(experimentId: string): Promise<boolean>;
  status(): Promise<ArchiveStatus[]>;
}

const tableStatus: JsonSchema = {
  type: 'object',
  properties: {
    version: { type: 'integer', description: 'Delta table version (-1 before the first commit)' },
    files: { type: 'integer' },
    pendingRows: { type: 'integer', description: 'rows buffered, not committed yet' },
    committedRows: { type: 'integer', description: 'rows committed by this process since it opened the table' },
  },
};

export const ARCHIVAL_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['experimentId', 'tablePath', 'tracesTable', 'assessmentsTable', 'source', 'enabledAt'],
  properties: {
    experimentId: { type: 'string' },
    tablePath: { type: 'string', description: 'directory holding the two Delta tables' },
    tracesTable: { type: 'string', description: 'Delta table: one row per completed trace' },
    assessmentsTable: { type: 'string', description: 'Delta table: one row per assessment' },
    source: { enum: ['config', 'api'], description: 'archive.tables in the config, or enabled through the API' },
    enabledAt: { type: 'string', format: 'date-time' },
    traces: tableStatus,
    assessments: tableStatus,
  },
};

const enableBody = z
  .object({
    tablePath: z
      .string()
      .min(1)
      .max(4096)
      .optional()
      .describe('Directory for the traces and assessments tables (default <archive.dir>/<experiment>)'),
  })
  .strict();

export function archiveRoutes(archive: ArchivalService): AdminRoute[] {
  const tags = ['archive'];
  const withStatus = async (a: Archival): Promise<Record<string, unknown>> => {
    const s = (await archive.status()).find((x) => x.experimentId === a.experimentId);
    return s ? { ...a, traces: s.traces, assessments: s.assessments } : { ...a };
  };
  const notArchived = (exp: string) =>
    new ScorecarError('NOT_FOUND', `experiment ${exp} is not archived`, { details: { resource: 'archival' } });
  return [
    defineRoute({
      method: 'GET',
      path: '/archival',
      operationId: 'listArchivals',
      summary: 'Archived experiments and their tables',
      tags,
      responses: {
        '200': {
          description: 'Every archived experiment',
          schema: { type: 'object', required: ['archivals'], properties: { archivals: { type: 'array', items: ARCHIVAL_SCHEMA } } },
        },
      },
      handler: async () => ({ status: 200, body: { archivals: await Promise.all(archive.list().map(withStatus)) } }),
    }),
    defineRoute({
      method: 'GET',
      path: '/experiments/{exp}/archival',
      operationId: 'getArchival',
      summary: "An experiment's archival (404 when it is not archived)",
      tags,
      responses: { '200': { description: 'The archival with table versions', schema: ARCHIVAL_SCHEMA } },
      handler: async (req) => {
        const a = archive.get(req.params.exp!);
        if (!a) throw notArchived(req.params.exp!);
        return { status: 200, body: await withStatus(a) };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/experiments/{exp}/archival',
      operationId: 'enableArchival',
      summary: "Archive an experiment's traces and assessments to Delta tables from now on",
      description:
        'Creates the two tables under tablePath when missing (an existing table must be one scorecar can append to: ' +
        'protocol (1, 2), no features, the same schema; else 409 TABLE_INCOMPATIBLE). Remembered across restarts. ' +
        'With another tablePath than the current one, the old tables are committed and closed first.',
      tags,
      body: enableBody,
      bodyOptional: true,
      responses: {
        '200': { description: 'The archival', schema: ARCHIVAL_SCHEMA },
        '409': { description: 'TABLE_INCOMPATIBLE: a table exists at tablePath that scorecar cannot append to', schema: schemaRef('Error') },
      },
      handler: async (req) => {
        const body = req.body as z.output<typeof enableBody> | undefined;
        const a = await archive.enable(req.params.exp!, body?.tablePath);
        return { status: 200, body: await withStatus(a) };
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/experiments/{exp}/archival',
      operationId: 'disableArchival',
      summary: 'Stop archiving an experiment (what is buffered is committed first; the tables stay)',
      tags,
      responses: {
        '200': {
          description: 'Archival stopped',
          schema: { type: 'object', required: ['experimentId', 'archived'], properties: { experimentId: { type: 'string' }, archived: { const: false } } },
        },
      },
      handler: async (req) => {
        if (!(await archive.disable(req.params.exp!))) throw notArchived(req.params.exp!);
        return { status: 200, body: { experimentId: req.params.exp!, archived: false } };
      },
    }),
  ];
}
