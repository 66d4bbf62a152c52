import { conformanceSuite } from './suite.ts';

conformanceSuite('embedded PGlite', async () => ({}));
