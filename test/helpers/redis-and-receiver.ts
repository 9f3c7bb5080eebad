import { afterAll, afterEach, beforeAll } from 'vitest';
import { startAlertReceiver, type AlertReceiver } from './alert-receiver.js';
import { startRedis, type RedisServer } from './redis-server.js';

export interface RedisAndReceiver {
  redis: RedisServer;
  receiver: AlertReceiver;
}

/**
 * One redis-server and one alert receiver for a test file: started before its tests, stopped
 * after them; after each test `afterEachTest` runs (stop the app under test) and Redis is
 * flushed. The fields are set once beforeAll has run.
 */
export function useRedisAndReceiver(afterEachTest: () => Promise<void>): RedisAndReceiver {
  const env = {} as RedisAndReceiver;
  beforeAll(async () => {
    env.redis = await startRedis();
    env.receiver = await startAlertReceiver();
  });
  afterAll(async () => {
    await env.receiver.close();
    await env.redis.stop();
  });
  afterEach(async () => {
    await afterEachTest();
    const c = env.redis.client();
    await c.flushall();
    c.disconnect();
  });
  return env;
}
