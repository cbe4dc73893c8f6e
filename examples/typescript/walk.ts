// A frontend team's walk through the whole API, through a client generated from the server's
// own /openapi.json (openapi-typescript + openapi-fetch). It is type-checked under --strict with
// no cast, `any` or non-null assertion: where the document were imprecise, this would not
// compile. walk.sh also runs it against a live server, so the types are the replies' too.
//
// The lead export answers JSON or CSV on one operation (`format=json|csv`, the contract of
// shared/API.md); a client states the media type it reads, as openapi-fetch's second type
// parameter, and gets `Lead[]` from `json` and a string from `csv`. `user` in `/api/auth/me` is
// null for an API key whose creator has left; the walk states what it does then.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Lead = components["schemas"]["Lead"];
type Task = components["schemas"]["Task"];
type TimelineItem = components["schemas"]["TimelineItem"];

const base = process.env.CRM_URL ?? "http://127.0.0.1:18081";
// Each client reads the media types it names: its successes and the problem+json errors.
const api = createClient<paths, "application/json" | "application/problem+json">({ baseUrl: base });
const csv = createClient<paths, "text/csv" | "application/problem+json">({ baseUrl: base });

function must<T>(what: string, value: T | undefined): T {
  if (value === undefined) throw new Error(`${what}: no data`);
  return value;
}

async function main(): Promise<void> {
  const slug = `walk-${Date.now()}`;
  const registered = await api.POST("/api/auth/register", {
    body: {
      email: `owner@${slug}.example`,
      password: "a long and unusual passphrase",
      name: "Owner",
      tenant: { name: "Walk", slug },
    },
  });
  const session = must("register", registered.data);
  const login = await api.POST("/api/auth/login", {
    params: { header: { "X-Tenant": slug } },
    body: { email: `owner@${slug}.example`, password: "a long and unusual passphrase" },
  });
  const token: string = must("login", login.data).access_token;
  const auth = { Authorization: `Bearer ${token}` };
  const me = must("me", (await api.GET("/api/auth/me", { headers: auth })).data);
  const myId: string = must("me", me.user?.id);

  // Leads: create, read, change with If-Match, list sorted and filtered, export, import.
  const created = await api.POST("/api/leads", {
    headers: auth,
    body: { first_name: "Grace", last_name: "Hopper", company: "Navy", status: "new" },
  });
  const lead: Lead = must("create lead", created.data);
  const remaining: number | undefined = created.response.headers.get("RateLimit-Remaining")
    ? Number(created.response.headers.get("RateLimit-Remaining"))
    : undefined;
  const changed = await api.PATCH("/api/leads/{id}", {
    headers: auth,
    params: { path: { id: lead.id }, header: { "If-Match": `"${lead.version}"` } },
    body: { title: "Rear Admiral", status: "qualified" },
  });
  const version: number = must("patch lead", changed.data).version;
  const page = await api.GET("/api/leads", {
    headers: auth,
    params: { query: { q: "hopper", status: "qualified", sort: "-created_at", limit: 10, owner_id: "me" } },
  });
  const leads: Lead[] = must("list leads", page.data).data;
  const next: string | null = must("list leads", page.data).next_cursor;
  const exported = await api.GET("/api/leads/export", { headers: auth, params: { query: { format: "json" } } });
  const exportedLeads: Lead[] = must("export json", exported.data);
  const asCsv = await csv.GET("/api/leads/export", { headers: auth, params: { query: { format: "csv" } }, parseAs: "text" });
  const csvText: string = must("export csv", asCsv.data);
  const imported = await api.POST("/api/leads/import", {
    headers: auth,
    params: { query: { mode: "atomic" } },
    body: [{ company: "Imported Ltd" }],
  });
  const importedIds: string[] = must("import", imported.data).ids;

  // Conversion, deals and pipelines.
  const pipelines = must("pipelines", (await api.GET("/api/pipelines", { headers: auth })).data).data;
  const stageKeys: string[] = pipelines.flatMap((p) => p.stages.map((s) => s.key));
  const converted = await api.POST("/api/leads/{id}/convert", {
    headers: auth,
    params: { path: { id: lead.id } },
    body: { account: { name: "Navy" }, deal: { name: "Compilers", amount: { amount_minor: 100_000, currency: "USD" } } },
  });
  const conversion = must("convert", converted.data);
  const dealId: string | undefined = conversion.deal?.id;
  if (dealId !== undefined) {
    const moved = await api.PATCH("/api/deals/{id}", {
      headers: auth,
      params: { path: { id: dealId } },
      body: { stage: stageKeys[1] ?? "qualification", probability: 40 },
    });
    must("move deal", moved.data);
  }

  // Activities and tasks on the contact, and its timeline.
  const contactId: string = conversion.contact.id;
  await api.POST("/api/activities", {
    headers: auth,
    body: { kind: "call", subject: "First call", contact_id: contactId },
  });
  const newTask = await api.POST("/api/tasks", {
    headers: auth,
    body: { title: "Send the quote", due_at: "2020-01-01T09:00:00Z", priority: "high", assignee_id: myId, contact_id: contactId },
  });
  const task: Task = must("create task", newTask.data);
  const overdue = await api.GET("/api/tasks", {
    headers: auth,
    params: { query: { overdue: "true", assignee_id: "me", sort: "due_at", priority: "high" } },
  });
  const overdueTasks: Task[] = must("overdue tasks", overdue.data).data;
  const done = await api.PATCH("/api/tasks/{id}", {
    headers: auth,
    params: { path: { id: task.id } },
    body: { status: "done" },
  });
  const completedAt: string | null = must("complete task", done.data).completed_at;
  const timeline = await api.GET("/api/{resource}/{id}/timeline", {
    headers: auth,
    params: { path: { resource: "contacts", id: contactId }, query: { limit: 20 } },
  });
  const items: TimelineItem[] = must("timeline", timeline.data).data;
  const kinds: string[] = items.map((item) => item.type);

  // Members, API keys, the audit log, and a delete with a stale version (412).
  const members = must("members", (await api.GET("/api/users", { headers: auth })).data).data;
  const key = await api.POST("/api/api-keys", { headers: auth, body: { name: "CI", role: "viewer" } });
  const secret: string = must("api key", key.data).key;
  const audit = await api.GET("/api/audit-logs", { headers: auth, params: { query: { resource: "lead", limit: 5 } } });
  const entries = must("audit", audit.data).data;
  const stale = await api.DELETE("/api/leads/{id}", {
    headers: auth,
    params: { path: { id: lead.id }, header: { "If-Match": `"${version - 1}"` } },
  });
  const problem: string | undefined = stale.error?.title;
  const gone = await api.DELETE("/api/tasks/{id}", { headers: auth, params: { path: { id: task.id } } });

  const checks: [string, boolean][] = [
    ["session has a role", session.role === "owner"],
    ["lead listed", leads.some((l) => l.id === lead.id) && next === null],
    ["rate limits sent", remaining === undefined || remaining >= 0],
    ["export json", exportedLeads.length >= 1],
    ["export csv", csvText.startsWith("id,")],
    ["import", importedIds.length === 1],
    ["overdue task found", overdueTasks.some((t) => t.id === task.id)],
    ["task completed", completedAt !== null],
    ["timeline has the task", kinds.includes("task") && kinds.includes("activity")],
    ["members", members.length === 1],
    ["api key shown once", secret.length > 20],
    ["audit", entries.length >= 1],
    ["stale delete refused", stale.response.status === 412 && problem !== undefined],
    ["task deleted", gone.response.status === 204],
  ];
  const failed = checks.filter(([, ok]) => !ok).map(([what]) => what);
  if (failed.length > 0) throw new Error(`walk failed: ${failed.join(", ")}`);
  console.log(`walk: ${checks.length} checks passed`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
