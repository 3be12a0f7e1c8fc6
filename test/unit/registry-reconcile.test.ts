// Config as code: the `scorers:` list of the config file reconciled into the registry.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openRegistryStore, STORE_KINDS } from '../support/stores.ts';
import type { ScorerEntry } from '../../src/config/index.ts';
import { Registry, type RegistryStore } from '../../src/registry/index.ts';
import { ScorecarError } from '../../src/util/errors.ts';

const LENGTH = { type: 'code', source: "(ctx) => String(ctx.outputs ?? '').length" };
const SAFETY = { type: 'builtin', judge: 'safety' };

let store: RegistryStore;
let registry: Registry;

function entry(e: Partial<ScorerEntry> & { name: string }): ScorerEntry {
  return { experiment: 'chat-app', definition: LENGTH, sampleRate: 0, ...e } as ScorerEntry;
}

describe.each(STORE_KINDS)('over the %s store', (kind) => {
  let opened: { store: RegistryStore; close(): Promise<void> };
  beforeEach(async () => {
    opened = await openRegistryStore(kind);
    store = opened.store;
    registry = await Registry.open({ store, pollIntervalMs: 0 });
  });
  afterEach(async () => {
    await registry.close();
    await opened.close();
  });

  describe('reconcile', () => {
    it('registers and starts new entries, then is a no-op when run again', async () => {
      const entries = [
        entry({ name: 'response_length', sampleRate: 1, filterString: "trace.status = 'OK'" }),
        entry({ name: 'safety', definition: SAFETY, sampleRate: 0 }),
      ];
      const first = await registry.reconcile(entries);
      expect(first).toEqual([
        {
          experimentId: 'chat-app',
          name: 'response_length',
          version: 1,
          definition: 'created',
          sampling: 'started',
        },
        {
          experimentId: 'chat-app',
          name: 'safety',
          version: 1,
          definition: 'created',
          sampling: 'unchanged',
        },
      ]);
      expect(await registry.get('chat-app', 'response_length')).toMatchObject({
        sampleRate: 1,
        filterString: "trace.status = 'OK'",
        status: 'active',
      });
      expect((await registry.get('chat-app', 'safety')).status).toBe('registered');
      expect(registry.activeFor('chat-app').map((s) => s.name)).toEqual(['response_length']);

      const before = await store.dump();
      const again = await registry.reconcile(entries);
      expect(again.every((r) => r.definition === 'unchanged' && r.sampling === 'unchanged')).toBe(true);
      expect(await store.dump()).toEqual(before);
    });

    it('adds a version only when the definition really changed (key order does not count)', async () => {
      await registry.reconcile([
        entry({ name: 'j', definition: { type: 'builtin', judge: 'safety', model: 'openai:/m' } }),
      ]);
      const same = await registry.reconcile([
        entry({ name: 'j', definition: { model: 'openai:/m', judge: 'safety', type: 'builtin' } }),
      ]);
      expect(same[0]!.definition).toBe('unchanged');
      const changed = await registry.reconcile([
        entry({ name: 'j', definition: { type: 'builtin', judge: 'correctness' } }),
      ]);
      expect(changed[0]).toMatchObject({ definition: 'new_version', version: 2 });
      expect((await registry.versions('chat-app', 'j')).length).toBe(2);
    });

    it('applies rate and filter changes; rate 0 stops an active scorer', async () => {
      await registry.reconcile([entry({ name: 'l', sampleRate: 0.5 })]);
      const upd = await registry.reconcile([
        entry({ name: 'l', sampleRate: 0.25, filterString: "trace.status = 'ERROR'" }),
      ]);
      expect(upd[0]!.sampling).toBe('updated');
      expect(await registry.get('chat-app', 'l')).toMatchObject({
        sampleRate: 0.25,
        filterString: "trace.status = 'ERROR'",
      });
      const stop = await registry.reconcile([entry({ name: 'l', sampleRate: 0 })]);
      expect(stop[0]!.sampling).toBe('stopped');
      expect(await registry.get('chat-app', 'l')).toMatchObject({
        sampleRate: 0,
        status: 'stopped',
        filterString: null,
      });
    });

    it('leaves scorers that are not in the file alone', async () => {
      await registry.register('chat-app', 'from_api', SAFETY);
      await registry.start('chat-app', 'from_api', { sampleRate: 0.1 });
      await registry.reconcile([entry({ name: 'l', sampleRate: 1 })]);
      expect(await registry.get('chat-app', 'from_api')).toMatchObject({ sampleRate: 0.1, status: 'active' });
    });

    it('refuses the whole list when any entry is invalid, reporting every problem by path, writing nothing', async () => {
      await registry.reconcile([entry({ name: 'ok', sampleRate: 1 })]);
      const before = await store.dump();
      const e = await registry
        .reconcile([
          entry({ name: 'ok', sampleRate: 0.5 }),
          entry({ name: 'bad name' }),
          entry({ name: 'bad_def', definition: { type: 'builtin', judge: 'nope' } }),
          entry({ name: 'bad_filter', sampleRate: 1, filterString: 'trace.status ==' }),
          entry({ name: 'ok', sampleRate: 0.5 }),
        ])
        .then(
          () => null,
          (err: unknown) => err,
        );
      expect(e).toBeInstanceOf(ScorecarError);
      expect((e as ScorecarError).code).toBe('CONFIG_INVALID');
      const paths = (((e as ScorecarError).details?.errors ?? []) as Array<{ path: string }>).map(
        (x) => x.path,
      );
      expect(paths).toContain('scorers[1]');
      expect(paths.some((p) => p.startsWith('scorers[2].definition'))).toBe(true);
      expect(paths).toContain('scorers[3]');
      expect(paths).toContain('scorers[4]'); // duplicate of scorers[0]
      expect(await store.dump()).toEqual(before);
    });
  });
});
