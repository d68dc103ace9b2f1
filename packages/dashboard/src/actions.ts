import { InvalidJobError, JobNotFoundError, JobStateError, UnsupportedFeatureError } from '@shardwork/jobs';
import type { DashboardData } from './data.js';
import { CANCEL_REASON } from './job-html.js';

/** An action the backend refused for a reason the message explains in full (no "Failed:" prefix). */
export class ActionRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ActionRefused';
  }
}

/** What an action of the job page does with a form: the message to flash, or a rejection. */
export type JobAction = (form: Record<string, unknown>) => Promise<string>;

/** The job id a job page's form sends. */
function jobIdOf(form: Record<string, unknown>): string {
  if (typeof form.id !== 'string' || form.id === '') throw new Error('no job id given (send id)');
  return form.id;
}

/**
 * Run `action`, turning the job layer's refusals (an unknown job, a state
 * that does not allow it, an adapter that cannot, a malformed id) into
 * {@link ActionRefused}: their messages say what happened, and nothing was changed.
 */
async function refusing<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    if (
      error instanceof JobNotFoundError ||
      error instanceof JobStateError ||
      error instanceof UnsupportedFeatureError ||
      error instanceof InvalidJobError
    ) {
      throw new ActionRefused(error.message);
    }
    throw error;
  }
}

/**
 * The job page's own actions, by path: Cancel and Promote. (Retry of a dead
 * job is `/actions/retry`, shared with the dead list.)
 */
export function jobActions(data: DashboardData): Readonly<Record<string, JobAction>> {
  return {
    '/actions/cancel': async (form) => {
      const id = jobIdOf(form);
      const result = await refusing(() => data.act((jobs) => jobs.cancel(id, { reason: CANCEL_REASON })));
      if (!result.cancelled) throw new ActionRefused(`Not cancelled: job ${id} had already finished (${result.state})`);
      return result.state === 'running'
        ? `Cancelled job ${id}: its running attempt is being aborted, and it ends cancelled`
        : `Cancelled job ${id}: it was ${result.state}, and will not run`;
    },
    '/actions/promote': async (form) => {
      const id = jobIdOf(form);
      await refusing(() => data.act((jobs) => jobs.promote(id)));
      return `Promoted job ${id}: it is ready to run now`;
    },
  };
}
