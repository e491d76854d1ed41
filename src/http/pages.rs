//! Readable HTML pages for people who open an actor or post URL in a browser.

use crate::{
    error::Error,
    federation::sanitize::{escape, html as clean},
    services::{communities, views},
    state::{AppState, Ctx},
};
use axum::{
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};

pub fn router() -> Router {
    Router::new().route("/", get(home))
}

fn layout(state: &AppState, title: &str, body: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · {site}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}}\
         article{{border-top:1px solid #ddd;padding:.8rem 0}}.meta{{color:#666;font-size:.9rem}}\
         a{{color:#0b5394}}header a{{text-decoration:none;font-weight:bold}}</style></head>\
         <body><header><a href=\"/\">{site}</a></header><main>{body}</main></body></html>",
        title = escape(title),
        site = escape(&state.config.instance_name()),
    ))
    .into_response()
}

fn post_article(p: &views::PostView) -> String {
    let title = p
        .title
        .as_deref()
        .map(|t| format!("<h2>{}</h2>", escape(t)))
        .unwrap_or_default();
    let tags: Vec<String> = p
        .communities
        .iter()
        .map(|c| format!("#{}", escape(c)))
        .collect();
    format!(
        "<article>{title}<div>{content}</div><p class=\"meta\">{author} · <a href=\"{url}\">{published}</a> · {tags}</p></article>",
        content = clean(&p.content),
        author = escape(p.author.display_name.as_deref().unwrap_or(&p.author.handle)),
        url = escape(&p.url),
        published = p.published.format("%e %B %Y %H:%M"),
        tags = tags.join(" "),
    )
}

pub fn post(state: &AppState, p: &views::PostView) -> Response {
    layout(
        state,
        p.title.as_deref().unwrap_or("Post"),
        &post_article(p),
    )
}

pub fn community(
    state: &AppState,
    c: &views::CommunityView,
    items: &[views::PostView],
) -> Response {
    let shown = c
        .display_name
        .clone()
        .unwrap_or_else(|| format!("#{}", c.name));
    let mut body = format!(
        "<h1>{}</h1><p class=\"meta\">@{} · {} followers · {} posts</p>",
        escape(&shown),
        escape(&c.handle),
        c.followers,
        c.posts
    );
    if let Some(summary) = &c.summary {
        body.push_str(&format!("<p>{}</p>", clean(summary)));
    }
    body.push_str(&format!(
        "<p class=\"meta\">Follow from Mastodon or any fediverse app: search for <code>@{}</code>.</p>",
        escape(&c.handle)
    ));
    for p in items {
        body.push_str(&post_article(p));
    }
    layout(state, &shown, &body)
}

pub fn member(state: &AppState, m: &views::ActorView) -> Response {
    let shown = m.display_name.clone().unwrap_or_else(|| m.name.clone());
    layout(
        state,
        &shown,
        &format!(
            "<h1>{}</h1><p class=\"meta\">@{}</p>",
            escape(&shown),
            escape(&m.handle)
        ),
    )
}

async fn home(ctx: Ctx) -> Result<Response, Error> {
    let state = ctx.app_data();
    let mut body = format!(
        "<h1>{}</h1><p>Communities of professional learning for teachers. Share once, see many.</p><h2>Communities</h2><ul>",
        escape(&state.config.instance_name())
    );
    for c in communities::list_local(state).await? {
        let v = views::community_view(state, &c).await?;
        body.push_str(&format!(
            "<li><a href=\"{}\">{}</a> <span class=\"meta\">@{} · {} posts</span></li>",
            escape(&v.id),
            escape(v.display_name.as_deref().unwrap_or(&v.name)),
            escape(&v.handle),
            v.posts
        ));
    }
    body.push_str("</ul>");
    Ok(layout(state, "Home", &body))
}
