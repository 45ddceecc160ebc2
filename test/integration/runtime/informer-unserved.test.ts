// A kind the API server does not serve (its CRD not applied, as when a controller is upgraded
// before its CRDs): the informer says so as an error naming the resource and the fix, instead of
// a generic retry warning, and the cache stays unsynced (the controller is not ready).
import { afterAll, describe, expect, it } from '@jest/globals';
import { Cache } from '../../../src/runtime/cache.js';
import type { ResourceType } from '../../../src/runtime/kube-client.js';
import { captureLogs } from '../../harness/logs.js';
import { client } from './fixtures.js';

const WIDGETS: ResourceType = {
  kind: 'Widget',
  group: 'unserved.virtfleet.io',
  version: 'v1',
  plural: 'widgets',
  namespaced: true,
};

const stop = new AbortController();
afterAll(() => stop.abort());

describe('an informer for a kind that is not served', () => {
  it('logs an error naming the resource and the CRD to apply, and does not sync', async () => {
    const logs = captureLogs();
    const cache = new Cache(client(), logs.logger);
    cache.informerFor(WIDGETS);
    void cache.run(stop.signal);
    let synced = false;
    void cache.waitForSync().then(() => (synced = true));
    const deadline = Date.now() + 20_000;
    const found = () => logs.lines().find((line) => String(line.msg).includes('does not serve'));
    while (!found() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(found()).toMatchObject({
      level: 50, // pino's error
      resource: 'widgets',
      msg:
        'the API server does not serve widgets.unserved.virtfleet.io/v1 (404): apply its CustomResourceDefinition ' +
        '(crds/, or upgrade the Helm chart); the controller is not ready until it can list it',
    });
    expect(synced).toBe(false);
  });
});
