//! Discussion threads: replies to any post, nested, in reading order.

use super::{posts::readable_by, views};
use crate::{
    error::{Error, Result},
    state::AppState,
    store::{actor, post, thread_query},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// How many replies a post has, at any depth: those not deleted that whoever reads the post
/// may read too (public ones, and ones as visible as the post).
pub async fn reply_count(state: &AppState, post: &post::Model) -> Result<u64> {
    Ok(thread_query::count_replies(&state.db, post.id, &post.visibility).await?)
}

/// The whole discussion `key` is part of: `{"root": post, "items": [post + depth + parent]}`.
/// The root is the top post we have (walking up `in_reply_to`); items are depth-first, siblings
/// oldest first. What the viewer may not read is left out with its replies; a deleted post
/// with replies stays as `{"deleted": true}` so that the thread keeps its shape.
pub async fn thread(state: &AppState, viewer: Option<&actor::Model>, key: &str) -> Result<Value> {
    let start = post::Entity::find()
        .filter(post::Column::Key.eq(key))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no post with key {key:?}")))?;
    if start.deleted_at.is_some() {
        return Err(Error::Gone(format!("post {key:?} was deleted")));
    }
    if !readable_by(state, &start, viewer).await? {
        return Err(Error::NotFound(format!("no post with key {key:?}")));
    }
    let root = top_of_thread(state, viewer, start).await?;

    let descendants = thread_query::descendants(&state.db, root.id).await?;
    let posts = if descendants.is_empty() {
        Vec::new()
    } else {
        post::Entity::find()
            .filter(post::Column::Id.is_in(descendants.iter().map(|d| d.id)))
            .all(&state.db)
            .await?
    };
    let ordered = reading_order(&root, posts);

    // Readability, then what is left out: an unreadable post takes its replies with it.
    let mut kept: Vec<(post::Model, usize, String, bool)> = Vec::new();
    let mut hidden_below: Option<usize> = None;
    for (p, depth, parent) in ordered {
        if let Some(d) = hidden_below {
            if depth > d {
                continue;
            }
            hidden_below = None;
        }
        let deleted = p.deleted_at.is_some();
        if !deleted && !readable_by(state, &p, viewer).await? {
            hidden_below = Some(depth);
            continue;
        }
        kept.push((p, depth, parent, deleted));
    }
    // A deleted post stays only if something is shown under it (read backwards: the next
    // item kept after it is one of its replies exactly when it is deeper).
    let mut shown: Vec<(post::Model, usize, String, bool)> = Vec::new();
    let mut next_depth: Option<usize> = None;
    for item in kept.into_iter().rev() {
        if item.3 && next_depth.is_none_or(|d| d <= item.1) {
            continue;
        }
        next_depth = Some(item.1);
        shown.push(item);
    }
    shown.reverse();

    let mut items = Vec::with_capacity(shown.len());
    for (p, depth, parent, deleted) in shown {
        let mut v = if deleted {
            placeholder(&p)
        } else {
            to_value(views::post_view(state, &p).await?)?
        };
        if let Some(m) = v.as_object_mut() {
            m.insert("depth".into(), json!(depth));
            m.insert("parent".into(), json!(parent));
        }
        items.push(v);
    }
    let root = if root.deleted_at.is_some() {
        placeholder(&root)
    } else {
        to_value(views::post_view(state, &root).await?)?
    };
    Ok(json!({ "root": root, "items": items }))
}

/// Walks up `in_reply_to` to the top post stored here, through deleted posts but not past one
/// the viewer may not read.
async fn top_of_thread(
    state: &AppState,
    viewer: Option<&actor::Model>,
    start: post::Model,
) -> Result<post::Model> {
    let mut top = start;
    let mut seen = HashSet::from([top.id]);
    for _ in 0..thread_query::MAX_DEPTH {
        let Some(parent_id) = top.in_reply_to.clone() else {
            break;
        };
        let Some(parent) = post::Entity::find()
            .filter(post::Column::ApId.eq(parent_id))
            .one(&state.db)
            .await?
        else {
            break;
        };
        if !seen.insert(parent.id)
            || (parent.deleted_at.is_none() && !readable_by(state, &parent, viewer).await?)
        {
            break;
        }
        top = parent;
    }
    Ok(top)
}

/// Depth-first from the root, siblings oldest first: (post, depth, parent's key).
fn reading_order(root: &post::Model, posts: Vec<post::Model>) -> Vec<(post::Model, usize, String)> {
    let mut children: HashMap<String, Vec<post::Model>> = HashMap::new();
    for p in posts {
        if let Some(parent) = p.in_reply_to.clone() {
            children.entry(parent).or_default().push(p);
        }
    }
    for siblings in children.values_mut() {
        siblings.sort_by_key(|p| (p.published, p.id));
    }
    let mut out = Vec::new();
    let mut seen = HashSet::from([root.id]);
    // (parent ap_id, parent key, depth of the children)
    let mut stack: Vec<(post::Model, usize, String)> = Vec::new();
    let push_children = |stack: &mut Vec<(post::Model, usize, String)>,
                         children: &mut HashMap<String, Vec<post::Model>>,
                         parent: &post::Model,
                         depth: usize| {
        if let Some(list) = children.remove(&parent.ap_id) {
            // Reversed onto the stack so that the oldest comes off first.
            for c in list.into_iter().rev() {
                stack.push((c, depth, parent.key.clone()));
            }
        }
    };
    push_children(&mut stack, &mut children, root, 1);
    while let Some((p, depth, parent)) = stack.pop() {
        if !seen.insert(p.id) {
            continue;
        }
        push_children(&mut stack, &mut children, &p, depth + 1);
        out.push((p, depth, parent));
    }
    out
}

fn placeholder(p: &post::Model) -> Value {
    json!({
        "deleted": true,
        "key": p.key,
        "id": p.ap_id,
        "in_reply_to": p.in_reply_to,
    })
}

fn to_value(v: views::PostView) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Internal(e.to_string()))
}

/// What a new post's `in_reply_to` names, as the parent's ActivityPub id: a post key or id
/// here, or the id of a post elsewhere, read from its origin (as any fetch is: domain policy
/// and the address checks apply) when not yet stored, so that the reply can be addressed to
/// its author and threads where the parent lives. A parent that is not there is a 422 and
/// nothing is stored (a key that is no post here is a 400).
pub async fn resolve_parent(ctx: &crate::state::Ctx, spec: Option<&str>) -> Result<Option<String>> {
    use crate::federation::note::DbPost;
    use activitypub_federation::fetch::object_id::ObjectId;

    let Some(spec) = spec.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let state = ctx.app_data();
    if !spec.contains("://") {
        let local = post::Entity::find()
            .filter(post::Column::Key.eq(spec))
            .one(&state.db)
            .await?;
        return match local {
            Some(p) => Ok(Some(p.ap_id)),
            None => Err(Error::BadRequest(format!(
                "in_reply_to {spec:?} is neither a URL nor the key of a post here: give the post's \"id\""
            ))),
        };
    }
    let url = url::Url::parse(spec)
        .map_err(|e| Error::BadRequest(format!("in_reply_to {spec:?} is not a URL: {e}")))?;
    let known = post::Entity::find()
        .filter(post::Column::ApId.eq(url.as_str()))
        .one(&state.db)
        .await?;
    if let Some(p) = known {
        return Ok(Some(p.ap_id));
    }
    let here = url::Url::parse(&state.origin())
        .map_err(|e| Error::Internal(format!("configured origin: {e}")))?;
    if crate::federation::same_origin(&url, &here) {
        return Err(Error::Unprocessable(format!(
            "in_reply_to: there is no post {url} here"
        )));
    }
    let fetched = ObjectId::<DbPost>::from(url.clone())
        .dereference(ctx)
        .await
        .map_err(|e| {
            Error::Unprocessable(format!(
                "in_reply_to: could not read the post {url} from its instance: {e}"
            ))
        })?;
    Ok(Some(fetched.0.ap_id))
}
