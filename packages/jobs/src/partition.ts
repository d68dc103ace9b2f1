/**
 * The partition of a job key, shared by every adapter with partitions.
 *
 * @module
 */

/**
 * The partition of a key: FNV-1a (32 bit) of its UTF-8 bytes, mod `partitions`.
 * Stable across processes, versions and adapters: jobs of one key always meet in one partition.
 */
export function partitionOf(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}
