//! Who may read a post (DESIGN.md §6). Pure rules; the services feed them facts.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Anyone; federates along the delivery graph.
    Public,
    /// Followers of the communities it is in; delivered only to them, never to `as:Public`.
    Members,
    /// Signed-in members of the origin instance; never leaves it.
    Authority,
}

impl Visibility {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "members" => Some(Self::Members),
            "authority" => Some(Self::Authority),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Members => "members",
            Self::Authority => "authority",
        }
    }

    pub fn federates(self) -> bool {
        self != Self::Authority
    }
}

/// What is known about the reader of one post.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reader {
    /// Signed in as a member of this instance.
    pub signed_in: bool,
    pub is_author: bool,
    /// Follows (is a member of) one of the communities the post is in.
    pub follows_a_community: bool,
}

pub fn can_read(visibility: Visibility, post_is_local: bool, reader: Reader) -> bool {
    if reader.is_author {
        return true;
    }
    match visibility {
        Visibility::Public => true,
        Visibility::Members => reader.follows_a_community,
        Visibility::Authority => post_is_local && reader.signed_in,
    }
}

/// An aggregating Group re-announces only what it may show to anyone; visibility never widens.
pub fn may_reannounce(visibility: Visibility, received_as_follower: bool) -> bool {
    match visibility {
        Visibility::Public => true,
        Visibility::Members => !received_as_follower,
        Visibility::Authority => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_table() {
        let anon = Reader::default();
        let member = Reader {
            signed_in: true,
            ..Reader::default()
        };
        let follower = Reader {
            signed_in: true,
            follows_a_community: true,
            ..Reader::default()
        };
        assert!(can_read(Visibility::Public, false, anon));
        assert!(!can_read(Visibility::Members, true, member));
        assert!(can_read(Visibility::Members, true, follower));
        assert!(!can_read(Visibility::Authority, true, anon));
        assert!(can_read(Visibility::Authority, true, member));
        assert!(!can_read(Visibility::Authority, false, member));
        assert!(can_read(
            Visibility::Authority,
            true,
            Reader {
                is_author: true,
                ..anon
            }
        ));
    }

    #[test]
    fn members_posts_are_not_widened_by_aggregators() {
        assert!(may_reannounce(Visibility::Public, true));
        assert!(!may_reannounce(Visibility::Members, true));
        assert!(may_reannounce(Visibility::Members, false));
        assert!(!may_reannounce(Visibility::Authority, false));
        assert_eq!(Visibility::parse("members"), Some(Visibility::Members));
        assert_eq!(Visibility::parse("secret"), None);
    }
}
