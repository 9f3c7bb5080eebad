import type { Redis } from 'ioredis';

/**
 * CPU seconds Redis' main thread has used so far (`used_cpu_user_main_thread` +
 * `used_cpu_sys_main_thread` of INFO cpu, Redis >= 6.2): where it runs commands, scripts and
 * pub/sub delivery. The benchmark's scenarios share the machine with their Redis, so what a side
 * makes Redis do is part of its cost.
 */
export async function redisMainThreadCpu(c: Redis): Promise<number> {
  const info = await c.info('cpu');
  const v = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return v('used_cpu_user_main_thread') + v('used_cpu_sys_main_thread');
}
