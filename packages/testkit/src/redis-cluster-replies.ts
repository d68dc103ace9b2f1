/**
 * Reading the replies of a Redis Cluster node: bulk strings, `CLUSTER NODES`
 * and `INFO` fields.
 *
 * @module
 */

/** Number of hash slots in a Redis Cluster. */
export const SLOTS = 16384;

/** One line of `CLUSTER NODES`. */
export interface NodeLine {
  readonly id: string;
  readonly port: number;
  readonly flags: readonly string[];
  /** Id of its primary, or `-`. */
  readonly primaryId: string;
  readonly connected: boolean;
  /** Slot ranges it serves, as `[from, to]`. */
  readonly slots: readonly (readonly [number, number])[];
}

/** The payload of a bulk string reply, or throw on an error reply. */
export function bulk(reply: string): string {
  if (reply.startsWith('-')) throw new Error(`Redis replied ${reply.trim()}`);
  const match = /^\$(-?\d+)\r\n/.exec(reply);
  if (match?.[1] === undefined) throw new Error(`expected a bulk string, got ${JSON.stringify(reply.slice(0, 80))}`);
  return reply.slice(match[0].length, match[0].length + Number(match[1]));
}

/** The lines of a `CLUSTER NODES` payload (slots being migrated, `[…]`, left out). */
export function parseNodes(text: string): NodeLine[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [id = '', address = '', flags = '', primaryId = '', , , , link = '', ...slots] = line.split(' ');
      const port = Number(/:(\d+)@/.exec(address)?.[1] ?? 0);
      return {
        id,
        port,
        flags: flags.split(','),
        primaryId,
        connected: link === 'connected',
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s): [number, number] => {
            const [from, to = from] = s.split('-');
            return [Number(from), Number(to)];
          }),
      };
    });
}

/** The value of `field` in an `INFO` or `CLUSTER INFO` payload. */
export function info(text: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(text)?.[1]?.trim();
}
