//! Threads: every reply under a post, at any depth, in one recursive query (the same SQL runs on
//! SQLite and PostgreSQL; `posts.in_reply_to` is indexed).

use sea_orm::{ConnectionTrait, DbErr, Statement};

/// Replies deeper than this are not followed: a thread that deep is a loop or an attack.
pub const MAX_DEPTH: i64 = 64;

/// A post under the root: its row id and its depth (1 = a direct reply).
#[derive(Debug, Clone, Copy)]
pub struct Descendant {
    pub id: i64,
    pub depth: i64,
}

/// Every post replying, directly or not, to the post with row id `root_id` (deleted ones
/// included, so that their replies are still found).
pub async fn descendants<C: ConnectionTrait>(
    conn: &C,
    root_id: i64,
) -> Result<Vec<Descendant>, DbErr> {
    let backend = conn.get_database_backend();
    let sql = "WITH RECURSIVE thread(id, ap_id, depth) AS (\
           SELECT id, ap_id, CAST(0 AS BIGINT) FROM posts WHERE id = $1 \
           UNION ALL \
           SELECT p.id, p.ap_id, t.depth + 1 FROM posts p JOIN thread t ON p.in_reply_to = t.ap_id \
           WHERE t.depth < $2) \
         SELECT id, MIN(depth) AS depth FROM thread WHERE depth > 0 GROUP BY id";
    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [root_id.into(), MAX_DEPTH.into()],
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Descendant {
                id: row.try_get("", "id")?,
                depth: row.try_get::<i64>("", "depth")?,
            })
        })
        .collect()
}

/// How many replies the post has at any depth that are not deleted and whose visibility is
/// `public` or `visibility` (the post's own: whoever reads the post reads those).
pub async fn count_replies<C: ConnectionTrait>(
    conn: &C,
    root_id: i64,
    visibility: &str,
) -> Result<u64, DbErr> {
    let backend = conn.get_database_backend();
    let sql = "WITH RECURSIVE thread(id, ap_id, depth) AS (\
           SELECT id, ap_id, CAST(0 AS BIGINT) FROM posts WHERE id = $1 \
           UNION ALL \
           SELECT p.id, p.ap_id, t.depth + 1 FROM posts p JOIN thread t ON p.in_reply_to = t.ap_id \
           WHERE t.depth < $2) \
         SELECT COUNT(DISTINCT posts.id) AS n FROM posts JOIN thread ON thread.id = posts.id \
         WHERE thread.depth > 0 AND posts.deleted_at IS NULL \
           AND (posts.visibility = 'public' OR posts.visibility = $3)";
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [root_id.into(), MAX_DEPTH.into(), visibility.into()],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0)
        .max(0) as u64)
}
