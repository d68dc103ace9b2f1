/**
 * The harness's calls to etcd's JSON gateway (`/v3/…` over HTTP): membership
 * changes, the member list and the leader. The gateway rather than the etcd3
 * client: member ids are 64-bit, and the JSON carries them as strings, whereas
 * the protobuf runtime may decode them into lossy numbers under the test runner.
 *
 * @module
 */

import { sleep } from '@shardwork/core';
import { type HarnessTls, requestJson } from './etcd-http.js';
import type { EtcdMember } from './etcd-member.js';

/** Calls to the JSON gateway of the members of one test cluster. */
export class EtcdGateway {
  readonly #members: readonly EtcdMember[];
  readonly #harnessTls: HarnessTls | undefined;
  readonly #rootAuth: { readonly username: string; readonly password: string } | undefined;

  /**
   * @param members - every member slot, removed ones included (they are skipped).
   * @param harnessTls - what the harness shows the members.
   * @param rootAuth - root's credentials when authentication is on.
   */
  constructor(
    members: readonly EtcdMember[],
    harnessTls: HarnessTls | undefined,
    rootAuth: { readonly username: string; readonly password: string } | undefined,
  ) {
    this.#members = members;
    this.#harnessTls = harnessTls;
    this.#rootAuth = rootAuth;
  }

  /** A call on the first live member (other than `avoid`) that answers, as root when authentication is on. */
  async call(path: string, body: object, avoid?: EtcdMember): Promise<unknown> {
    const harnessTls = this.#harnessTls;
    const rootAuth = this.#rootAuth;
    let last: unknown;
    for (const m of this.#members) {
      if (!m.up || m.removed || m === avoid) continue;
      try {
        let headers: Record<string, string> = {};
        if (rootAuth !== undefined) {
          const auth = (await requestJson(m.clientUrl('/v3/auth/authenticate'), harnessTls, 'POST', {
            name: rootAuth.username,
            password: rootAuth.password,
          })) as { token?: string };
          if (auth.token === undefined) throw new Error(`authentication as root failed: ${JSON.stringify(auth)}`);
          headers = { authorization: auth.token };
        }
        const reply = (await requestJson(m.clientUrl(path), harnessTls, 'POST', body, headers)) as {
          error?: string;
          message?: string;
        };
        if (reply.error !== undefined || reply.message !== undefined) {
          throw new Error(`${path} on ${m.name}: ${reply.message ?? reply.error}`);
        }
        return reply;
      } catch (error) {
        last = error;
      }
    }
    throw last ?? new Error('no live etcd member');
  }

  /**
   * A membership change through {@link EtcdGateway.call}, retried while etcd
   * calls the cluster unhealthy: with its strict reconfiguration check it
   * refuses one until every member has been connected for 5 s (so also right
   * after start).
   */
  async reconfigure(path: string, body: object, avoid: EtcdMember): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        await this.call(path, body, avoid);
        return;
      } catch (error) {
        if (!/unhealthy cluster/.test(String(error)) || Date.now() > deadline) throw error;
        await sleep(200);
      }
    }
  }

  /** `MemberList`: etcd's id of each member in the cluster, by peer URL. */
  async listMembers(): Promise<Map<string, string>> {
    const res = (await this.call('/v3/cluster/member/list', { linearizable: true })) as {
      members?: { ID: string; peerURLs?: string[] }[];
    };
    const byPeer = new Map<string, string>();
    for (const info of res.members ?? []) for (const url of info.peerURLs ?? []) byPeer.set(url, info.ID);
    return byPeer;
  }

  /** Index of the current leader among the members (waits up to 10 s for one). */
  async leaderIndex(): Promise<number> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      for (const [index, m] of this.#members.entries()) {
        if (!m.up || m.removed) continue;
        try {
          // The JSON gateway of etcd 3.4 (`/v3/maintenance/status`) answers without a client library.
          const body = (await requestJson(m.clientUrl('/v3/maintenance/status'), this.#harnessTls, 'POST', {})) as {
            header?: { member_id?: string };
            leader?: string;
          };
          if (body.leader !== undefined && body.leader !== '0' && body.leader === body.header?.member_id) {
            return index;
          }
        } catch {
          // member unreachable: try the next one
        }
      }
      await sleep(50);
    }
    throw new Error('no etcd leader within 10 s');
  }
}
