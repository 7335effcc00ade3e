/**
 * A real PostgreSQL for the shared-store tests. When it cannot be started the tests are skipped
 * with a message saying why, unless SKT_REQUIRE_POSTGRES=1 (CI), where that is a failure.
 */
import { startPostgresCluster, type PostgresCluster } from "../../scripts/lib/postgres-cluster.js";

export type { PostgresCluster };

export async function postgresOrSkip(): Promise<PostgresCluster | null> {
  try {
    return await startPostgresCluster();
  } catch (e) {
    if (process.env.SKT_REQUIRE_POSTGRES === "1") throw e;
    console.warn(
      `SKIPPED: PostgreSQL tests (set SKT_REQUIRE_POSTGRES=1 to make this a failure): ${(e as Error).message}`,
    );
    return null;
  }
}
