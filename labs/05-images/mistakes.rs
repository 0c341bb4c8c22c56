//! Level 5's mistakes: what each looks like from outside, and the hint for
//! it. `cargo lab 5` shows the hint of the first one a scenario shows;
//! labs/05-images/fixtures/ holds a wrong solution for each of several.

use crate::Mistake;
use crate::Symptom::{Lacks, Says};

pub const MISTAKES: &[Mistake] = &[
    Mistake {
        name: "marks-made-as-files",
        scenarios: &["unpack", "run"],
        shows_as: Says(".wh."),
        hint: "a file named .wh.NAME, or .wh..wh..opq, ended up in the root filesystem: these names are \
               not files to make but marks, and mark_of has to tell them from ordinary entries",
    },
    Mistake {
        name: "whiteout-ignored",
        scenarios: &["unpack"],
        shows_as: Says("etc/motd"),
        hint: "/etc/motd is still there, though layer 2 has the whiteout etc/.wh.motd: applying a \
               whiteout removes the name it carries from its directory (dir.remove)",
    },
    Mistake {
        name: "opaque-ignored",
        scenarios: &["unpack"],
        shows_as: Says("srv/old"),
        hint: "/srv/old is still there, though layer 3 marks /srv opaque: an opaque mark removes \
               everything the layers below put in its directory (dir.names(), then dir.remove of each)",
    },
    Mistake {
        name: "opaque-deletes-own",
        scenarios: &["unpack"],
        shows_as: Lacks("drwxr-xr-x 0:0       srv/new"),
        hint: "/srv/new is gone, though layer 3 makes it: an opaque mark hides only what lower layers \
               put in the directory, and a tar may give the layer's own entries before the mark; keep \
               what made_here says this layer made",
    },
    Mistake {
        name: "overlay-whiteout-missing",
        scenarios: &["run"],
        shows_as: Says("motd"),
        hint: "the container sees /etc/motd, which layer 2 deletes: overlayfs hides a lower file only \
               where an upper layer holds a character device 0:0 of its name (dir.mknod(name, \
               SFlag::S_IFCHR, 0, 0, 0o000))",
    },
    Mistake {
        name: "overlay-opaque-missing",
        scenarios: &["run"],
        shows_as: Says("/srv/old"),
        hint: "the container sees /srv/old, which layer 3's opaque /srv hides: overlayfs takes a \
               directory as opaque when it has the attribute trusted.overlay.opaque = \"y\" \
               (dir.set_own_xattr)",
    },
    Mistake {
        name: "quotes-kept",
        scenarios: &["pull", "push"],
        shows_as: Says("(for a token) failed"),
        hint: "the token request went to a URL with quotes in it: in WWW-Authenticate, a value in quotes \
               (realm=\"http://...\") is the text between them; the quotes are not part of it",
    },
    Mistake {
        name: "comma-splits-scope",
        scenarios: &["push"],
        shows_as: Says("uploads/ answered 401"),
        hint: "the registry refused the token for the push's upload: its challenge asked for \
               scope=\"repository:students/demo:pull,push\", and the token was asked for less. A quoted \
               value may hold commas: only a comma outside quotes ends a parameter",
    },
    Mistake {
        name: "service-left-out",
        scenarios: &["pull", "push"],
        shows_as: Says("invalid_token"),
        hint: "the registry calls the token invalid: a token is made for one service (the registry names \
               itself in its challenge, service=\"...\"), and the token server can only know which if the \
               request says so: ?service=...",
    },
    Mistake {
        name: "scopes-left-out",
        scenarios: &["pull", "push"],
        shows_as: Says("insufficient_scope"),
        hint: "the registry says the token grants too little: a token grants what its request asked for, \
               and the request has to name the challenge's scope (&scope=repository:NAME:ACTIONS)",
    },
];
