import type { Redis } from 'ioredis';

/** A message from the control plane to every worker process. */
export interface ControlMessage {
  readonly type: 'cancel';
  readonly runId: string;
}

/** The Redis pub/sub channel of control messages for a queue prefix. */
export function controlChannel(prefix: string): string {
  return `${prefix}:freshet:control`;
}

/** Publishes a control message; resolves with the number of worker processes that received it. */
export async function publishControl(
  redis: Redis,
  prefix: string,
  message: ControlMessage,
): Promise<number> {
  return redis.publish(controlChannel(prefix), JSON.stringify(message));
}

/**
 * Subscribes `subscriber` (a dedicated connection) to control messages; malformed messages are
 * ignored. Resolves once subscribed.
 */
export async function subscribeControl(
  subscriber: Redis,
  prefix: string,
  onMessage: (message: ControlMessage) => void,
): Promise<void> {
  const channel = controlChannel(prefix);
  subscriber.on('message', (ch: string, text: string) => {
    if (ch !== channel) return;
    try {
      const message = JSON.parse(text) as ControlMessage;
      if (message.type === 'cancel' && typeof message.runId === 'string') onMessage(message);
    } catch {
      // not ours
    }
  });
  await subscriber.subscribe(channel);
}
