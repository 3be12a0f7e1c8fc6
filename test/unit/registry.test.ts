// Lifecycle rules of the registry service over an in-memory SQLite store.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openRegistryStore, STORE_KINDS } from '../support/stores.ts';
import { MAX_SCORERS_PER_EXPERIMENT } from '../../src/definitions/index.ts';
import type { TraceView } from '../../src/genai/types.ts';
import {
  canonicalJson,
  Registry,
  type RegistryChange,
  type RegistryStore,
} from '../../src/registry/index.ts';
import { validateScorerDefinition } from '../../src/scoring/index.ts';
import { ScorecarError } from '../../src/util/index.ts';

const SAFETY = { type: 'builtin', judge: 'safety' };
const LENGTH = { type: 'code', source: "(ctx) => String(ctx.outputs ?? '').length" };
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let store: RegistryStore;
let registry: Registry;

async function expectCode(p: Promise<unknown>, code: string): Promise<ScorecarError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ScorecarError);
  expect((e as ScorecarError).code).toBe(code);
  return e as ScorecarError;
}

/** Runs a refused call and checks the store did not change at all. */
async function refusedWithoutChange(p: () => Promise<unknown>, code: string): Promise<ScorecarError> {
  const before = await store.dump();
  const e = await expectCode(p(), code);
  expect(await store.dump()).toEqual(before);
  return e;
}

function view(status: 'OK' | 'ERROR'): TraceView {
  return { status, tags: {}, metadata: {}, spans: [], spanTypes: [] } as unknown as TraceView;
}

describe.each(STORE_KINDS)('over the %s store', (kind) => {
  let opened: { store: RegistryStore; close(): Promise<void> };
  beforeEach(async () => {
    opened = await openRegistryStore(kind);
    store = opened.store;
    // No poller: unit tests drive refreshes through mutations only.
    registry = await Registry.open({
      store,
      pollIntervalMs: 0,
      validateDefinition: validateScorerDefinition,
    });
  });
  afterEach(async () => {
    await registry.close();
    await opened.close();
  });

  describe('register', () => {
    it('creates the experiment on first use and version 1 in status registered', async () => {
      await expectCode(registry.list('chat'), 'NOT_FOUND');
      const s = await registry.register('chat', 'my_safety_judge', SAFETY);
      expect(s).toMatchObject({
        experimentId: 'chat',
        name: 'my_safety_judge',
        version: 1,
        definition: SAFETY,
        sampleRate: 0,
        filterString: null,
        status: 'registered',
      });
      expect(s.createdAt).toMatch(ISO);
      expect(s.updatedAt).toMatch(ISO);
      expect(await registry.listExperiments()).toEqual([
        { experimentId: 'chat', scorerCount: 1, activeCount: 0, createdAt: s.createdAt },
      ]);
    });

    it('adds a version for an existing name and keeps its sampling config', async () => {
      await registry.register('chat', 'safety', SAFETY);
      await registry.start('chat', 'safety', { sampleRate: 0.5, filterString: "trace.status = 'OK'" });
      const v2 = await registry.register('chat', 'safety', { ...SAFETY, model: 'openai:/gpt-4.1-mini' });
      expect(v2).toMatchObject({
        version: 2,
        sampleRate: 0.5,
        filterString: "trace.status = 'OK'",
        status: 'active',
      });
      expect((await registry.versions('chat', 'safety')).map((s) => s.version)).toEqual([1, 2]);
      expect((await registry.get('chat', 'safety', 1)).definition).toEqual(SAFETY);
      expect((await registry.list('chat')).map((s) => [s.name, s.version])).toEqual([['safety', 2]]);
      expect(registry.activeFor('chat')[0]!.version).toBe(2);
    });

    it('keeps names unique per experiment, not across experiments', async () => {
      const a = await registry.register('a', 'safety', SAFETY);
      const b = await registry.register('b', 'safety', SAFETY);
      expect([a.version, b.version]).toEqual([1, 1]);
    });

    it.each([
      ['', 'empty'],
      ['-leading-dash', 'leading dash'],
      ['has space', 'space'],
      ['slash/name', 'slash'],
      ['ü', 'non-ascii'],
      ['x'.repeat(65), '65 characters'],
    ])('refuses the name %j (%s) and stores nothing', async (name) => {
      await refusedWithoutChange(() => registry.register('chat', name, SAFETY), 'INVALID_ARGUMENT');
    });

    it('accepts a 64-character name with _ . -', async () => {
      const name = `a${'_.-9'.repeat(15)}xyz`;
      expect(name).toHaveLength(64);
      expect((await registry.register('chat', name, SAFETY)).name).toBe(name);
    });

    it('refuses a bad experiment id', async () => {
      await refusedWithoutChange(() => registry.register('has space', 'x', SAFETY), 'INVALID_ARGUMENT');
      await refusedWithoutChange(() => registry.register('', 'x', SAFETY), 'INVALID_ARGUMENT');
    });

    it('refuses an invalid definition with the path of each problem, storing nothing', async () => {
      const e = await refusedWithoutChange(
        () => registry.register('chat', 'bad', { type: 'builtin', judge: 'no_such_judge' }),
        'INVALID_DEFINITION',
      );
      const errors = e.details?.errors as Array<{ path: string }>;
      expect(errors.length).toBeGreaterThan(0);
      expect(errors.every((x) => x.path.startsWith('definition'))).toBe(true);
      await refusedWithoutChange(
        () => registry.register('chat', 'bad', 'not an object'),
        'INVALID_DEFINITION',
      );
      await refusedWithoutChange(
        () => registry.register('chat', 'bad', { type: 'nope' }),
        'INVALID_DEFINITION',
      );
    });

    it.each([
      ['unknown judge', { type: 'builtin', judge: 'vibes' }, 'definition.judge'],
      [
        'missing [[choice]]',
        { type: 'prompt', promptTemplate: 'Is {{response}} ok?' },
        'definition.promptTemplate',
      ],
      [
        'bad template variable',
        { type: 'prompt', promptTemplate: '[[a]] [[b]] {{nope}}' },
        'definition.promptTemplate',
      ],
      [
        'instructions without variables',
        { type: 'judge', instructions: 'Judge it well' },
        'definition.instructions',
      ],
      ['bad model URI', { type: 'builtin', judge: 'safety', model: 'nonsense' }, 'definition.model'],
      ['code that does not compile', { type: 'code', source: '(ctx) => {' }, 'definition.source'],
    ])(
      'refuses a definition with %s (INVALID_DEFINITION at its path), storing nothing',
      async (_what, def, path) => {
        await registry.register('chat', 'existing', SAFETY);
        const e = await refusedWithoutChange(
          () => registry.register('chat', 'existing', def),
          'INVALID_DEFINITION',
        );
        expect(((e.details?.errors ?? []) as Array<{ path: string }>).map((x) => x.path)).toContain(path);
        expect(e.message).toContain(path);
      },
    );

    it(`refuses the ${MAX_SCORERS_PER_EXPERIMENT + 1}st name with LIMIT_EXCEEDED naming the limit`, async () => {
      for (let i = 0; i < MAX_SCORERS_PER_EXPERIMENT; i++) await registry.register('chat', `s${i}`, SAFETY);
      const e = await refusedWithoutChange(
        () => registry.register('chat', 'one_too_many', SAFETY),
        'LIMIT_EXCEEDED',
      );
      expect(e.message).toContain(`limit is ${MAX_SCORERS_PER_EXPERIMENT}`);
      expect(e.details?.limit).toBe(MAX_SCORERS_PER_EXPERIMENT);
      // A new version of an existing name is not a new name; another experiment has its own limit.
      expect((await registry.register('chat', 's0', SAFETY)).version).toBe(2);
      expect((await registry.register('other', 'one_too_many', SAFETY)).version).toBe(1);
      // Deleting a name frees a slot.
      await registry.delete('chat', 's3');
      expect((await registry.register('chat', 'one_too_many', SAFETY)).version).toBe(1);
    });
  });

  describe('start, update, stop', () => {
    beforeEach(async () => {
      await registry.register('chat', 'safety', SAFETY);
    });

    it('goes registered → active → stopped → active, stop keeping the registration', async () => {
      const started = await registry.start('chat', 'safety', { sampleRate: 0.7 });
      expect(started).toMatchObject({ sampleRate: 0.7, status: 'active' });
      const updated = await registry.update('chat', 'safety', { sampleRate: 0.8 });
      expect(updated).toMatchObject({ sampleRate: 0.8, status: 'active' });
      const stopped = await registry.stop('chat', 'safety');
      expect(stopped).toMatchObject({ sampleRate: 0, status: 'stopped', version: 1 });
      expect((await registry.list('chat')).map((s) => [s.name, s.status])).toEqual([['safety', 'stopped']]);
      expect((await registry.start('chat', 'safety', { sampleRate: 0.5 })).status).toBe('active');
    });

    it('refuses start rates outside (0, 1] and update rates outside [0, 1], storing nothing', async () => {
      for (const r of [0, -0.1, 1.0001, Number.NaN, Number.POSITIVE_INFINITY]) {
        await refusedWithoutChange(
          () => registry.start('chat', 'safety', { sampleRate: r }),
          'INVALID_ARGUMENT',
        );
      }
      for (const r of [-0.1, 1.5, Number.NaN]) {
        await refusedWithoutChange(
          () => registry.update('chat', 'safety', { sampleRate: r }),
          'INVALID_ARGUMENT',
        );
      }
      await refusedWithoutChange(() => registry.update('chat', 'safety', {}), 'INVALID_ARGUMENT');
      expect((await registry.start('chat', 'safety', { sampleRate: 1 })).sampleRate).toBe(1);
    });

    it('update with rate 0 stops; stop on a never-started scorer leaves it registered', async () => {
      expect((await registry.stop('chat', 'safety')).status).toBe('registered');
      await registry.start('chat', 'safety', { sampleRate: 0.3 });
      expect((await registry.update('chat', 'safety', { sampleRate: 0 })).status).toBe('stopped');
    });

    it('keeps the filter when omitted, clears it with null or blank, replaces it when given', async () => {
      const f = "trace.status = 'OK'";
      expect(
        (await registry.start('chat', 'safety', { sampleRate: 0.5, filterString: f })).filterString,
      ).toBe(f);
      expect((await registry.update('chat', 'safety', { sampleRate: 0.6 })).filterString).toBe(f);
      expect((await registry.stop('chat', 'safety')).filterString).toBe(f);
      expect((await registry.start('chat', 'safety', { sampleRate: 0.5 })).filterString).toBe(f);
      const g = "trace.status = 'ERROR'";
      const filterOnly = await registry.update('chat', 'safety', { filterString: g });
      expect(filterOnly).toMatchObject({ filterString: g, sampleRate: 0.5 });
      expect((await registry.update('chat', 'safety', { filterString: '  ' })).filterString).toBeNull();
      await registry.update('chat', 'safety', { filterString: f });
      expect((await registry.update('chat', 'safety', { filterString: null })).filterString).toBeNull();
    });

    it('refuses a bad filter with its position and stores nothing', async () => {
      const e = await refusedWithoutChange(
        () => registry.start('chat', 'safety', { sampleRate: 0.5, filterString: "trace.status = 'OK' AND" }),
        'INVALID_FILTER',
      );
      expect(typeof e.details?.position).toBe('number');
      await refusedWithoutChange(
        () => registry.update('chat', 'safety', { filterString: 'no.such.field = 1' }),
        'INVALID_FILTER',
      );
    });

    it('reports NOT_FOUND naming the missing experiment or scorer', async () => {
      const e1 = await refusedWithoutChange(
        () => registry.start('nope', 'safety', { sampleRate: 0.5 }),
        'NOT_FOUND',
      );
      expect(e1.details?.resource).toBe('experiment');
      const e2 = await refusedWithoutChange(() => registry.stop('chat', 'nope'), 'NOT_FOUND');
      expect(e2.details?.resource).toBe('scorer');
      const e3 = await expectCode(registry.get('chat', 'safety', 9), 'NOT_FOUND');
      expect(e3.details?.resource).toBe('version');
    });

    it('does not rewrite anything when a change sets the values already there', async () => {
      await registry.start('chat', 'safety', { sampleRate: 0.5 });
      const before = await store.dump();
      await registry.start('chat', 'safety', { sampleRate: 0.5 });
      expect(await store.dump()).toEqual(before);
    });
  });

  describe('delete', () => {
    beforeEach(async () => {
      await registry.register('chat', 'safety', SAFETY);
      await registry.register('chat', 'safety', { ...SAFETY, model: 'openai:/a' });
      await registry.register('chat', 'safety', { ...SAFETY, model: 'openai:/b' });
      await registry.start('chat', 'safety', { sampleRate: 0.4 });
    });

    it('deletes one version; the previous one becomes the latest and keeps running', async () => {
      const r = await registry.delete('chat', 'safety', 3);
      expect(r).toEqual({ experimentId: 'chat', name: 'safety', deletedVersions: [3], nameRemoved: false });
      expect(await registry.get('chat', 'safety')).toMatchObject({
        version: 2,
        sampleRate: 0.4,
        status: 'active',
      });
      expect(registry.activeFor('chat').map((s) => s.version)).toEqual([2]);
    });

    it("deleting the last version removes the name; 'all' removes every version", async () => {
      await registry.delete('chat', 'safety', 1);
      await registry.delete('chat', 'safety', 2);
      const r = await registry.delete('chat', 'safety', 3);
      expect(r.nameRemoved).toBe(true);
      await expectCode(registry.get('chat', 'safety'), 'NOT_FOUND');
      expect(registry.activeFor('chat')).toEqual([]);
      await registry.register('chat', 'x', SAFETY);
      await registry.register('chat', 'x', SAFETY);
      expect(await registry.delete('chat', 'x', 'all')).toMatchObject({
        deletedVersions: [1, 2],
        nameRemoved: true,
      });
      // The experiment stays (empty).
      expect(await registry.list('chat')).toEqual([]);
    });

    it('never reuses a version number, even after the name was removed', async () => {
      await registry.delete('chat', 'safety', 'all');
      const again = await registry.register('chat', 'safety', SAFETY);
      expect(again.version).toBe(4);
      expect(again.status).toBe('registered');
    });

    it('refuses unknown versions, names and experiments without changing anything', async () => {
      expect(
        (await refusedWithoutChange(() => registry.delete('chat', 'safety', 7), 'NOT_FOUND')).details
          ?.resource,
      ).toBe('version');
      await refusedWithoutChange(() => registry.delete('chat', 'nope'), 'NOT_FOUND');
      await refusedWithoutChange(() => registry.delete('nope', 'safety'), 'NOT_FOUND');
      await refusedWithoutChange(() => registry.delete('chat', 'safety', 0), 'INVALID_ARGUMENT');
    });
  });

  describe('active snapshot and change notification', () => {
    it('holds the latest version of each active scorer with its compiled filter, frozen and replaced on change', async () => {
      const changes: RegistryChange[] = [];
      registry.onChange((c) => changes.push(c));
      await registry.register('chat', 'safety', SAFETY);
      await registry.register('chat', 'length', LENGTH);
      await registry.start('chat', 'safety', { sampleRate: 0.7, filterString: "trace.status = 'OK'" });
      const snap = registry.activeScorers();
      expect(registry.activeScorers()).toBe(snap); // no change, same object
      expect([...snap.keys()]).toEqual(['chat']);
      const [s] = snap.get('chat')!;
      expect(s).toMatchObject({
        name: 'safety',
        version: 1,
        sampleRate: 0.7,
        filterString: "trace.status = 'OK'",
      });
      expect(s!.filter!.matches(view('OK'))).toBe(true);
      expect(s!.filter!.matches(view('ERROR'))).toBe(false);
      expect(Object.isFrozen(s)).toBe(true);
      expect(Object.isFrozen(snap.get('chat'))).toBe(true);

      await registry.update('chat', 'safety', { sampleRate: 0.8 });
      const snap2 = registry.activeScorers();
      expect(snap2).not.toBe(snap);
      expect(snap2.get('chat')![0]!.sampleRate).toBe(0.8);
      expect(snap.get('chat')![0]!.sampleRate).toBe(0.7); // the old snapshot is untouched
      await registry.start('chat', 'length', { sampleRate: 1 });
      expect(registry.activeFor('chat').map((x) => [x.name, x.filter])).toEqual([
        ['length', null],
        ['safety', expect.anything()],
      ]);
      expect(changes.length).toBeGreaterThanOrEqual(5);
      expect(changes.every((c) => c.source === 'local')).toBe(true);
      expect(changes.at(-1)!.active).toBe(registry.activeScorers());
      expect(changes.at(-1)!.revision).toBe(registry.revision());
    });

    it('stops delivering to an unsubscribed listener and survives a throwing one', async () => {
      let calls = 0;
      const off = registry.onChange(() => {
        calls++;
      });
      registry.onChange(() => {
        throw new Error('listener bug');
      });
      await registry.register('chat', 'a', SAFETY);
      off();
      await registry.register('chat', 'b', SAFETY);
      expect(calls).toBe(1);
    });
  });

  describe('kill switch', () => {
    beforeEach(async () => {
      for (const exp of ['a', 'b']) {
        for (const n of ['x', 'y']) {
          await registry.register(exp, n, SAFETY);
          await registry.start(exp, n, { sampleRate: 0.5 });
        }
        await registry.register(exp, 'idle', SAFETY);
      }
    });

    it('stops every active scorer of one experiment and leaves the others running', async () => {
      const stopped = await registry.stopAll('a');
      expect(stopped.map((s) => `${s.experimentId}/${s.name}/${s.status}`)).toEqual([
        'a/x/stopped',
        'a/y/stopped',
      ]);
      expect(registry.activeFor('a')).toEqual([]);
      expect(registry.activeFor('b')).toHaveLength(2);
      expect((await registry.get('a', 'idle')).status).toBe('registered');
      expect(await registry.stopAll('a')).toEqual([]);
    });

    it('stops every experiment at once; unknown experiment is NOT_FOUND', async () => {
      expect((await registry.stopAll()).length).toBe(4);
      expect(registry.activeScorers().size).toBe(0);
      await refusedWithoutChange(() => registry.stopAll('nope'), 'NOT_FOUND');
    });
  });

  describe('canonicalJson', () => {
    it('ignores key order and undefined members, keeps array order', () => {
      expect(canonicalJson({ b: 1, a: { d: [2, 1], c: undefined } })).toBe(
        canonicalJson({ a: { d: [2, 1] }, b: 1 }),
      );
      expect(canonicalJson({ a: [1, 2] })).not.toBe(canonicalJson({ a: [2, 1] }));
    });
  });
});
