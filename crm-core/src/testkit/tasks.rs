//! Conformance cases for tasks, the first kind built on the record descriptions: their rules,
//! filters and due-time order, the two members who own one, their events and timeline entries.

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::{assert_invalid, tenant};
use crate::error::Error;
use crate::model::{
    ActivityTarget, Kind, Lead, Member, NewLead, NewMember, NewTask, Record, Task, TaskPatch, TaskPriority,
    TaskStatus,
};
use crate::scope::{Role, Scope};
use crate::service::{Crm, ListRequest, TimelineItem};
use crate::store::{Filter, ListQuery, TimeRange};

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).single().expect("a valid time")
}

fn titled(title: &str) -> NewTask {
    NewTask { title: title.into(), ..NewTask::default() }
}

fn due(title: &str, due_at: Option<DateTime<Utc>>) -> NewTask {
    NewTask { due_at, ..titled(title) }
}

async fn join(crm: &Crm, admin: &Scope, email: &str, role: Role) -> (Member, Scope) {
    let new = NewMember { email: email.into(), name: email.into(), role, password: None };
    let member = crm.add_member(admin, new).await.expect("add member");
    let scope = crm.scope_for(admin.tenant_id(), member.user.id).await.expect("a member's scope");
    (member, scope)
}

/// Titles of every task the request lists, following cursors.
async fn titles(crm: &Crm, scope: &Scope, request: ListRequest) -> Vec<String> {
    let (mut out, mut request) = (Vec::new(), request);
    for _ in 0..50 {
        let page = crm.list::<Task>(scope, request.clone()).await.expect("a task page");
        out.extend(page.data.into_iter().map(|t| t.title));
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => return out,
        }
    }
    panic!("pagination did not end");
}

/// Defaults, the completion rule, and input that breaks a rule named by its field.
pub async fn tasks_keep_their_rules(crm: Crm) {
    let acme = tenant(&crm, "Taskrules").await;
    let other = tenant(&crm, "Taskrulesother").await;
    let s = &acme.owner_scope;
    let owner = s.user_id();
    let task = crm.create::<Task>(s, titled("Call Ada")).await.unwrap();
    assert_eq!((task.priority, task.status, task.owner_id), (TaskPriority::Normal, TaskStatus::Open, owner));
    assert_eq!((task.assignee_id, task.related, task.completed_at, task.due_at), (None, None, None, None));
    assert_eq!(crm.get(s, task.meta.id).await.unwrap(), task);

    // Done sets completed_at when the change happens; done again keeps it; reopening clears it.
    let status = |status| TaskPatch { status: Some(status), ..TaskPatch::default() };
    let done = crm.update(s, task.meta.id, None, status(TaskStatus::Done)).await.unwrap();
    assert_eq!(done.completed_at, Some(done.meta.updated_at));
    let renamed = TaskPatch { title: Some("Called Ada".into()), ..status(TaskStatus::Done) };
    let still_done = crm.update(s, task.meta.id, None, renamed).await.unwrap();
    assert_eq!(still_done.completed_at, done.completed_at);
    let reopened = crm.update(s, task.meta.id, None, status(TaskStatus::Open)).await.unwrap();
    assert_eq!(reopened.completed_at, None);
    crm.update(s, task.meta.id, None, status(TaskStatus::Done)).await.unwrap();
    let cancelled = crm.update(s, task.meta.id, None, status(TaskStatus::Cancelled)).await.unwrap();
    assert_eq!(cancelled.completed_at, None);
    let created_done = crm.create::<Task>(s, NewTask { status: Some(TaskStatus::Done), ..titled("Done") });
    let created_done = created_done.await.unwrap();
    assert_eq!(created_done.completed_at, Some(created_done.meta.created_at));

    // Bad input, each named by its field, and nothing written.
    let lead = crm.create::<Lead>(s, NewLead { last_name: Some("Lovelace".into()), ..NewLead::default() });
    let lead = lead.await.unwrap();
    let theirs = crm
        .create::<Lead>(&other.owner_scope, NewLead { company: Some("Other".into()), ..NewLead::default() });
    let theirs = theirs.await.unwrap();
    let before = crm.list::<Task>(s, ListRequest::new()).await.unwrap().data.len();
    assert_invalid(crm.create::<Task>(s, titled("  ")).await, &["title"]);
    let two = NewTask {
        lead_id: Some(lead.meta.id),
        account_id: Some(crate::Id::from_uuid(Uuid::nil())),
        ..titled("Two")
    };
    assert_invalid(crm.create::<Task>(s, two).await, &["lead_id"]);
    let foreign = NewTask { lead_id: Some(theirs.meta.id), ..titled("Foreign") };
    assert_invalid(crm.create::<Task>(s, foreign).await, &["lead_id"]);
    let stranger = NewTask { assignee_id: other.owner_scope.user_id(), ..titled("Stranger") };
    assert_invalid(crm.create::<Task>(s, stranger).await, &["assignee_id"]);
    let long =
        NewTask { description: Some("x".repeat(20_001)), due_at: Some(at(10_000, 1, 1)), ..titled("Long") };
    let long = crm.create::<Task>(s, long).await;
    assert!(long.is_err(), "{long:?}");
    assert_eq!(crm.list::<Task>(s, ListRequest::new()).await.unwrap().data.len(), before);
    assert_invalid(
        crm.update(s, task.meta.id, None, TaskPatch { title: Some(String::new()), ..TaskPatch::default() })
            .await,
        &["title"],
    );

    // Another tenant's task is not there.
    assert_err!(crm.get(&other.owner_scope, task.meta.id).await, Error::NotFound);
    assert_err!(
        crm.update(&other.owner_scope, task.meta.id, None, status(TaskStatus::Done)).await,
        Error::NotFound
    );
}

/// Filters by status, priority, assignee, due range, overdue and related record, text search on
/// the title, and the due-time order with undated tasks last in either direction.
pub async fn task_lists_filter_and_sort_by_due_time(crm: Crm) {
    let acme = tenant(&crm, "Tasklists").await;
    let s = &acme.owner_scope;
    let (bob, _) = join(&crm, s, "bob@tasklists.example", Role::Member).await;
    let lead = crm.create::<Lead>(s, NewLead { last_name: Some("Hopper".into()), ..NewLead::default() });
    let lead = lead.await.unwrap();
    // The clock is at 2026-01-01: 2025 is past, 2027 ahead. Two tasks share a due time.
    let tasks = [
        due("undated one", None),
        due("late report", Some(at(2025, 6, 1))),
        due("tie b", Some(at(2027, 3, 1))),
        due("undated two", None),
        due("tie a", Some(at(2027, 3, 1))),
        due("early plan", Some(at(2025, 1, 1))),
    ];
    for new in tasks {
        crm.create::<Task>(s, new).await.unwrap();
    }
    let urgent = NewTask {
        priority: Some(TaskPriority::Urgent),
        assignee_id: Some(bob.user.id),
        lead_id: Some(lead.meta.id),
        status: Some(TaskStatus::Done),
        ..due("urgent done", Some(at(2025, 3, 1)))
    };
    crm.create::<Task>(s, urgent).await.unwrap();

    let ascending = titles(&crm, s, ListRequest::new().sort("due_at").limit(2)).await;
    assert_eq!(
        ascending,
        ["early plan", "urgent done", "late report", "tie b", "tie a", "undated one", "undated two"],
        "by due time, ties by id, undated last"
    );
    let descending = titles(&crm, s, ListRequest::new().sort("-due_at").limit(3)).await;
    assert_eq!(
        descending,
        ["tie a", "tie b", "late report", "urgent done", "early plan", "undated two", "undated one"],
        "latest first, undated still last"
    );
    let newest = titles(&crm, s, ListRequest::new().sort("-created_at")).await;
    assert_eq!(newest.first().map(String::as_str), Some("urgent done"));

    let filtered = |filter: Filter| ListRequest::new().sort("due_at").filter(filter);
    let equals = |name: &str, value: crate::kind::Value| Filter {
        equals: vec![(name.into(), value)],
        ..Filter::default()
    };
    let text = |s: &'static str| crate::kind::Value::Text(s.into());
    assert_eq!(titles(&crm, s, filtered(equals("status", text("done")))).await, ["urgent done"]);
    assert_eq!(titles(&crm, s, filtered(equals("priority", text("urgent")))).await, ["urgent done"]);
    let bobs = equals("assignee_id", crate::kind::Value::Uuid(bob.user.id.uuid()));
    assert_eq!(titles(&crm, s, filtered(bobs)).await, ["urgent done"]);
    let on_lead = Filter { target: Some(ActivityTarget::Lead(lead.meta.id)), ..Filter::default() };
    assert_eq!(titles(&crm, s, filtered(on_lead)).await, ["urgent done"]);
    let range = |from, before| Filter {
        ranges: vec![TimeRange { field: "due_at".into(), from, before }],
        ..Filter::default()
    };
    let in_2025 = range(Some(at(2025, 1, 1)), Some(at(2025, 6, 1)));
    assert_eq!(
        titles(&crm, s, filtered(in_2025)).await,
        ["early plan", "urgent done"],
        "from inclusive, before exclusive"
    );
    let overdue = Filter { named: vec!["overdue".into()], ..Filter::default() };
    assert_eq!(
        titles(&crm, s, filtered(overdue)).await,
        ["early plan", "late report"],
        "open and due before now"
    );
    assert_eq!(titles(&crm, s, ListRequest::new().q("tie").sort("due_at")).await, ["tie b", "tie a"]);

    // Filters tasks do not have, or values their fields cannot hold, are named.
    let bad = |filter: Filter| crm.list::<Task>(s, ListRequest::new().filter(filter));
    assert_invalid(bad(equals("priority", text("whenever"))).await, &["priority"]);
    assert_invalid(bad(equals("title", text("x"))).await, &["title"]);
    assert_invalid(bad(Filter { named: vec!["stale".into()], ..Filter::default() }).await, &["stale"]);
    assert_invalid(bad(range(Some(at(10_000, 1, 1)), None)).await, &["due_after"]);
    let not_a_range = Filter {
        ranges: vec![TimeRange { field: "completed_at".into(), from: None, before: None }],
        ..Filter::default()
    };
    assert_invalid(bad(not_a_range).await, &["completed_at"]);
    let on_lead_list = Filter { named: vec!["overdue".into()], ..Filter::default() };
    assert_invalid(crm.list::<Lead>(s, ListRequest::new().filter(on_lead_list)).await, &["overdue"]);
    // A store handed a named filter directly refuses it: only core knows the time.
    let mut query = ListQuery::new(Kind::Task);
    query.filter.named = vec!["overdue".into()];
    assert_invalid(crm.store().list(s, &query).await, &["overdue"]);
}

/// A task's owner and its assignee may both change it; other members may read it only.
/// Lists narrowed to a member's tasks find those they own or are assigned.
pub async fn task_owners_and_assignees_may_edit(crm: Crm) {
    let acme = tenant(&crm, "Taskowners").await;
    let s = &acme.owner_scope;
    let (ann, ann_scope) = join(&crm, s, "ann@taskowners.example", Role::Member).await;
    let (bob, bob_scope) = join(&crm, s, "bob@taskowners.example", Role::Member).await;
    let (_, cid_scope) = join(&crm, s, "cid@taskowners.example", Role::Member).await;
    let (_, viewer) = join(&crm, s, "vic@taskowners.example", Role::Viewer).await;
    let assigned = NewTask { assignee_id: Some(bob.user.id), ..titled("For Bob") };
    let task = crm.create::<Task>(&ann_scope, assigned).await.unwrap();
    assert_eq!(task.owner_id, Some(ann.user.id));
    let retitle = |title: &str| TaskPatch { title: Some(title.into()), ..TaskPatch::default() };
    crm.update(&ann_scope, task.meta.id, None, retitle("For Bob, by Ann")).await.unwrap();
    let by_bob = crm.update(&bob_scope, task.meta.id, None, retitle("Bob is on it")).await.unwrap();
    assert_eq!(by_bob.title, "Bob is on it");
    assert_err!(crm.update(&cid_scope, task.meta.id, None, retitle("Cid took it")).await, Error::Forbidden);
    assert_err!(crm.delete(&cid_scope, task.meta.id, None).await, Error::Forbidden);
    assert_eq!(crm.get(&cid_scope, task.meta.id).await.unwrap().title, "Bob is on it");
    assert_eq!(crm.get(&viewer, task.meta.id).await.unwrap().title, "Bob is on it");
    assert_err!(crm.create::<Task>(&viewer, titled("Viewer's")).await, Error::Forbidden);
    assert_err!(crm.update(&viewer, task.meta.id, None, retitle("Viewed")).await, Error::Forbidden);

    // Unassigned from Bob, the task is Ann's alone.
    let unassign = TaskPatch { assignee_id: Some(None), ..TaskPatch::default() };
    crm.update(&ann_scope, task.meta.id, None, unassign).await.unwrap();
    assert_err!(crm.update(&bob_scope, task.meta.id, None, retitle("Bob again")).await, Error::Forbidden);

    // The `Own` scope on lists: either owner field names the member.
    let cids =
        crm.create::<Task>(&cid_scope, NewTask { assignee_id: Some(bob.user.id), ..titled("Cid's for Bob") });
    let cids = cids.await.unwrap();
    crm.create::<Task>(&cid_scope, titled("Cid's own")).await.unwrap();
    let mut query = ListQuery::new(Kind::Task);
    query.filter.owned_by = Some(bob.user.id);
    let bobs: Vec<Uuid> = crm
        .store()
        .list(s, &query)
        .await
        .unwrap()
        .iter()
        .filter_map(|e| e.record_key())
        .map(|(_, id)| id)
        .collect();
    assert_eq!(bobs, [cids.meta.id.uuid()]);
    query.filter.owned_by = Some(ann.user.id);
    assert_eq!(crm.store().list(s, &query).await.unwrap().len(), 1, "Ann owns her task");
    let mut on_leads = ListQuery::new(Kind::Lead);
    on_leads.filter.owned_by = Some(ann.user.id);
    assert!(crm.store().list(s, &on_leads).await.unwrap().is_empty());
}

/// `task.created`, `task.assigned` and `task.completed` in the outbox, and tasks in their
/// record's timeline, newest first.
pub async fn task_events_and_timeline(crm: Crm) {
    let acme = tenant(&crm, "Taskevents").await;
    let s = &acme.owner_scope;
    let (bob, _) = join(&crm, s, "bob@taskevents.example", Role::Member).await;
    let lead = crm.create::<Lead>(s, NewLead { last_name: Some("Hopper".into()), ..NewLead::default() });
    let lead = lead.await.unwrap();
    let mark = crm.outbox(s, None, 1000).await.unwrap().last().map(|e| e.id.uuid());
    let on_lead =
        NewTask { lead_id: Some(lead.meta.id), assignee_id: Some(bob.user.id), ..titled("Follow up") };
    let task = crm.create::<Task>(s, on_lead).await.unwrap();
    let done = TaskPatch { status: Some(TaskStatus::Done), ..TaskPatch::default() };
    crm.update(s, task.meta.id, None, done).await.unwrap();
    let reassigned = TaskPatch {
        assignee_id: Some(s.user_id()),
        title: Some("Followed up".into()),
        ..TaskPatch::default()
    };
    crm.update(s, task.meta.id, None, reassigned).await.unwrap();
    let unassigned = TaskPatch { assignee_id: Some(None), ..TaskPatch::default() };
    crm.update(s, task.meta.id, None, unassigned).await.unwrap();
    let events = crm.outbox(s, mark, 1000).await.unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "task.created",
            "task.assigned",
            "task.updated",
            "task.completed",
            "task.updated",
            "task.assigned",
            "task.updated"
        ]
    );
    assert!(events.iter().all(|e| e.resource == Kind::Task && e.resource_id == task.meta.id.uuid()));
    assert_eq!(events[1].payload["assignee_id"], serde_json::json!(bob.user.id.uuid()));
    assert_eq!(events[3].payload["status"], "done");

    let page = crm.timeline(s, ActivityTarget::Lead(lead.meta.id), None, Some(2)).await.unwrap();
    let first: Vec<&str> = page.data.iter().map(TimelineItem::type_name).collect();
    assert_eq!(first, ["task", "change"], "the task, then the lead's creation");
    let listed: Task = page.data[0].record().expect("a task first");
    assert_eq!(listed.title, "Followed up");
    assert_eq!(page.next_cursor, None, "nothing older than the lead's creation");
    let one = crm.timeline(s, ActivityTarget::Lead(lead.meta.id), None, Some(1)).await.unwrap();
    let rest = crm.timeline(s, ActivityTarget::Lead(lead.meta.id), one.next_cursor.as_deref(), Some(1));
    let rest = rest.await.unwrap();
    assert!(matches!(&rest.data[..], [TimelineItem::Change(c)] if c.resource == Kind::Lead), "{rest:?}");
    assert_eq!(task.meta.id.uuid(), listed.meta().id.uuid());
}
