// GET /dashboard/:instance_id?token=… on the broker's listener: the instance's
// page for whoever holds a valid link (no platform credentials; the token is
// the credential, bound to the one instance). Anything else gets a refusal
// page without data. The access log names the route pattern only, never the
// URL, so tokens are not logged.
import express, { type Request, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import { DASHBOARD_HEADERS, dashboardPage, refusalPage } from './page.ts';
import type { DashboardTokens } from './token.ts';
import type { DashboardViews } from './view.ts';

export interface Dashboard {
  /** Serves /dashboard/:instance_id; mounted by the HTTP app. */
  router: Router;
  /** The dashboard_url of an instance: the configured public base URL, the page's path and a fresh token. */
  linkFor(instanceId: string): string;
}

/** An instance's dashboard_url: the configured public base URL, the page's path and a token for that instance. */
export function dashboardLinks(baseUrl: string, tokens: DashboardTokens): (instanceId: string) => string {
  const base = baseUrl.replace(/\/+$/, '');
  return (instanceId) => `${base}/dashboard/${encodeURIComponent(instanceId)}?token=${tokens.issue(instanceId)}`;
}

export function createDashboard(deps: { baseUrl: string; tokens: DashboardTokens; views: DashboardViews; log: Logger }): Dashboard {
  const linkFor = dashboardLinks(deps.baseUrl, deps.tokens);
  const router = express.Router({ caseSensitive: true, strict: false });

  const send = (res: Response, status: number, html: string) => res.status(status).set(DASHBOARD_HEADERS).send(html);

  // The full path here, so that metrics and the access log name the route as /dashboard/:instance_id.
  router.get('/dashboard/:instance_id', async (req: Request, res: Response) => {
    const instanceId = req.params.instance_id as string;
    const check = deps.tokens.check(instanceId, req.query.token);
    if (!check.valid) {
      const message =
        check.reason === 'expired'
          ? 'This dashboard link has expired. Open the service instance’s dashboard again from your platform for a new link.'
          : 'This dashboard link is not valid. Open the service instance’s dashboard from your platform (its dashboard URL).';
      return send(res, 403, refusalPage('Dashboard link refused', message));
    }
    try {
      const view = await deps.views.of(instanceId);
      if (!view) return send(res, 404, refusalPage('No such service instance', 'This service instance does not exist (any more).'));
      // Past half its life the page offers a newer link, so a bookmarked dashboard need never expire unused.
      const fresh = check.expiresAt.getTime() - Date.now() < deps.tokens.lifetimeMs / 2 ? linkFor(instanceId) : undefined;
      return send(res, 200, dashboardPage(view, { expiresAt: check.expiresAt, freshLink: fresh }));
    } catch (err) {
      deps.log.error({ err, instanceId }, 'showing a dashboard failed');
      return send(res, 503, refusalPage('Dashboard unavailable', 'The dashboard cannot be shown right now (Berth could not read its records). Try again in a moment.'));
    }
  });
  return { router, linkFor };
}
