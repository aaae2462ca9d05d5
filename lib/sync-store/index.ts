// The account-sync repository: every function that touches accounts, folders, messages or
// sync runs takes the owning userId and has `user_id = $1` in its WHERE clause, so a wrong or
// forged account id from one user can never read or change another user's data: it simply
// matches nothing. The schema backs this up with (account_id, user_id) foreign keys.
// One object over one Pool, put together from its parts: accounts.ts (users and accounts),
// messages.ts (folders and messages), runs.ts (sync runs), events.ts (new-message events).
import type { Pool } from 'pg';
import { createAccountStore } from './accounts';
import { createEventStore } from './events';
import { createMessageStore } from './messages';
import { createRunStore } from './runs';

export * from './types';

export function createStore(pool: Pool) {
  return {
    ...createAccountStore(pool),
    ...createMessageStore(pool),
    ...createRunStore(pool),
    ...createEventStore(pool),
  };
}

export type Store = ReturnType<typeof createStore>;
