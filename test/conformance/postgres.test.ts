import { conformanceSuite } from './suite.ts';
import { createTestDatabase } from '../support/postgres.ts';

conformanceSuite('PostgreSQL server', async () => createTestDatabase());
