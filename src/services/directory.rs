//! Who is here: a community's members and an event's participants, searchable.

use crate::store::actor;
use sea_orm::{
    sea_query::{Expr, ExprTrait, Func},
    Condition,
};

/// The condition "name, display name or school contains `search`" (case-insensitive, on
/// SQLite and PostgreSQL alike), for member directories and participant lists.
pub fn search_condition(search: Option<&str>) -> Condition {
    let Some(words) = search.map(str::trim).filter(|s| !s.is_empty()) else {
        return Condition::all();
    };
    let mut all = Condition::all();
    for word in words.split_whitespace() {
        let escaped = word
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        let mut any = Condition::any();
        for column in [
            actor::Column::Name,
            actor::Column::DisplayName,
            actor::Column::School,
        ] {
            any = any.add(
                Expr::expr(Func::lower(Expr::col(column)))
                    .like(sea_orm::sea_query::LikeExpr::new(pattern.clone()).escape('\\')),
            );
        }
        all = all.add(any);
    }
    all
}
