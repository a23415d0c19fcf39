//! Deterministic starting trees: generated ones of any size, and a small human-readable demo.
//!
//! Every tree has the same enterprise: three managed users (Ada, the primary user who owns the
//! refresh token; Grace; Alan), the app's service account, and two groups. Generated trees also
//! share content between users the way real Box accounts do:
//!
//! - Ada's `Team Handbook` folder is collaborated with the `Engineering` group (Grace and Alan),
//! - Grace's `Design Reviews` folder is collaborated with Ada (so it sits in Ada's root too),
//! - Alan's file `Budget FY25.csv` is collaborated with Ada directly.
//!
//! So the same ids appear in several users' trees, and an enterprise crawl must de-duplicate.

use super::content::{BinaryFormat, Content, MIN_TEXT_SIZE, TextFormat};
use super::model::{Accessor, Collab, Group, Kind, State, User, UserKind};
use super::util::{CLOCK_START, Rng};

/// A starting state for [`super::FakeBox::start`].
pub struct Tree {
    pub(crate) state: State,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree")
            .field("items", &self.item_count())
            .finish()
    }
}

const MIB: u64 = 1024 * 1024;

impl Tree {
    /// Users, groups and empty roots; no items.
    pub fn empty() -> Tree {
        Tree {
            state: State::new(0, default_users(), default_groups()),
        }
    }

    /// About 100 items.
    pub fn small() -> Tree {
        Tree::generated(0x5EED_0001, 100)
    }

    /// About 10 000 items, including a folder of 1 500 files (more than one 1 000-item page).
    pub fn medium() -> Tree {
        Tree::generated(0x5EED_0002, 10_000)
    }

    /// About 100 000 items, including a folder of 10 500 files: more than Box's maximum offset of
    /// 10 000, so only marker pagination (`usemarker=true`) can list all of it.
    pub fn large() -> Tree {
        Tree::generated(0x5EED_0003, 100_000)
    }

    /// About `items` items (folders included) spread over the three users, from `seed`.
    pub fn generated(seed: u64, items: usize) -> Tree {
        let mut state = State::new(seed, default_users(), default_groups());
        if items > 0 {
            Gen {
                rng: Rng::new(seed),
                state: &mut state,
                counter: 0,
            }
            .populate(items);
        }
        Tree { state }
    }

    /// A few dozen human-meaningful files with real, searchable text (contracts, runbooks, CSV,
    /// HTML, JSON), unicode and quoted names, images, and two files over 10 MiB whose bytes are
    /// only produced if someone downloads them.
    pub fn demo() -> Tree {
        let mut state = State::new(0xDE30, default_users(), default_groups());
        super::demo::populate(&mut state);
        Tree { state }
    }

    /// Number of files and folders (all users, roots excluded).
    pub fn item_count(&self) -> usize {
        self.state.nodes.len() - self.state.users.len()
    }
}

fn default_users() -> Vec<User> {
    let user = |id: &str, name: &str, login: &str, job: &str, kind: UserKind, age_days: i64| User {
        id: id.into(),
        name: name.into(),
        login: login.into(),
        kind,
        job_title: job.into(),
        created_at: CLOCK_START - age_days * 86_400,
    };
    vec![
        user(
            "11446498",
            "Ada Lovelace",
            "ada@example.com",
            "Head of Engineering",
            UserKind::Managed,
            1_200,
        ),
        user(
            "11446499",
            "Grace Hopper",
            "grace@example.com",
            "Principal Designer",
            UserKind::Managed,
            1_100,
        ),
        user(
            "11446500",
            "Alan Turing",
            "alan@example.com",
            "Research Lead",
            UserKind::Managed,
            900,
        ),
        user(
            "20845731",
            "Tributary Sync",
            "AutomationUser_1998371_kZ8tQ2xY9a@boxdevedition.com",
            "",
            UserKind::ServiceAccount,
            30,
        ),
    ]
}

fn default_groups() -> Vec<Group> {
    vec![
        Group {
            id: "7800101".into(),
            name: "Engineering".into(),
            members: vec![1, 2],
            created_at: CLOCK_START - 800 * 86_400,
        },
        Group {
            id: "7800102".into(),
            name: "Leadership".into(),
            members: vec![0],
            created_at: CLOCK_START - 700 * 86_400,
        },
    ]
}

/// Adds a collaboration while building a tree (no events: the stream starts after the tree).
pub(crate) fn seed_collab(state: &mut State, item: u64, accessor: Accessor, role: &str) {
    state.next_collab_id += 1;
    let created_by = state.nodes.get(&item).map(|n| n.owner).unwrap_or(0);
    state.collabs.push(Collab {
        id: state.next_collab_id,
        item,
        accessor,
        role: role.into(),
        created_by,
        created_at: CLOCK_START - 86_400,
    });
}

/// `name`, or `name (2)`, `name (3)`… before the extension, whichever is free in `parent`.
pub(crate) fn unique_name(state: &State, parent: u64, name: &str) -> String {
    if !state.name_taken(parent, name, None) {
        return name.to_string();
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, Some(ext)),
        _ => (name, None),
    };
    (2..)
        .map(|n| match ext {
            Some(ext) => format!("{stem} ({n}).{ext}"),
            None => format!("{stem} ({n})"),
        })
        .find(|candidate| !state.name_taken(parent, candidate, None))
        .unwrap_or_else(|| name.to_string())
}

const ADJECTIVES: &[&str] = &[
    "Quarterly",
    "Draft",
    "Final",
    "Annual",
    "Weekly",
    "Revised",
    "Old",
    "Shared",
    "Internal",
    "Customer",
    "Team",
    "Project",
    "Board",
    "Vendor",
    "Product",
    "Security",
    "Launch",
    "Hiring",
];
const NOUNS: &[&str] = &[
    "report",
    "notes",
    "budget",
    "roadmap",
    "summary",
    "plan",
    "invoice",
    "contract",
    "agenda",
    "review",
    "checklist",
    "forecast",
    "proposal",
    "minutes",
    "retrospective",
    "handbook",
    "memo",
    "specification",
    "survey results",
    "pricing sheet",
];
const UNICODE: &[&str] = &[
    "Résumé",
    "Überblick",
    "naïve plan",
    "日本語メモ",
    "Café",
    "Ελληνικά",
    "🚀 launch",
    "São Paulo",
    "Zürich office",
    "Ångström",
];
const FOLDERS: &[&str] = &[
    "Projects",
    "Archive",
    "Clients",
    "Meeting notes",
    "Design",
    "Finance",
    "Legal",
    "Research",
    "Ops",
    "Q1",
    "Q2",
    "Q3",
    "Q4",
    "Drafts",
    "Old stuff",
    "Team \"Alpha\"",
    "Résumés",
    "Shared assets",
    "Backups",
    "Bob's things",
    "2021",
    "2022",
    "2023",
];

struct Gen<'a> {
    rng: Rng,
    state: &'a mut State,
    counter: u64,
}

impl Gen<'_> {
    fn populate(&mut self, items: usize) {
        let (ada, grace, alan) = (0u32, 1u32, 2u32);
        let a_count = items * 80 / 100;
        let b_count = items * 12 / 100;
        let c_count = items - a_count - b_count;
        let bulk = if items >= 50_000 {
            10_500
        } else if items >= 5_000 {
            1_500
        } else {
            0
        };

        let ada_root = State::root_of(ada);
        let handbook = self.folder(ada_root, ada, "Team Handbook");
        seed_collab(self.state, handbook, Accessor::Group(0), "viewer");
        let mut made = 1;
        if bulk > 0 {
            let scans = self.folder(ada_root, ada, "Scans 2023");
            for i in 0..bulk {
                let seed = self.rng.next_u64();
                let size = MIN_TEXT_SIZE + self.rng.below(1_500);
                let content = Content::Text {
                    seed,
                    format: TextFormat::Txt,
                    size,
                };
                self.file(scans, ada, &format!("Receipt {i:05}.txt"), content);
            }
            made += 1 + bulk;
        }
        self.grow(ada, vec![ada_root, handbook], a_count.saturating_sub(made));

        let grace_root = State::root_of(grace);
        let design = self.folder(grace_root, grace, "Design Reviews");
        seed_collab(self.state, design, Accessor::User(ada), "editor");
        self.grow(
            grace,
            vec![grace_root, design, design],
            b_count.saturating_sub(1),
        );

        let alan_root = State::root_of(alan);
        let seed = self.rng.next_u64();
        let budget = self.file(
            alan_root,
            alan,
            "Budget FY25.csv",
            Content::Text {
                seed,
                format: TextFormat::Csv,
                size: 2_048,
            },
        );
        seed_collab(self.state, budget, Accessor::User(ada), "viewer");
        self.grow(alan, vec![alan_root], c_count.saturating_sub(1));
    }

    fn grow(&mut self, owner: u32, mut folders: Vec<u64>, count: usize) {
        for _ in 0..count {
            let parent = *self.rng.pick(&folders);
            if self.rng.chance(12) {
                let name = self.folder_name();
                let id = self.folder(parent, owner, &name);
                folders.push(id);
            } else {
                self.random_file(parent, owner);
            }
        }
    }

    fn times(&mut self) -> (i64, i64) {
        let created = CLOCK_START - 86_400 - self.rng.below(3 * 365 * 86_400) as i64;
        let span = (CLOCK_START - 3_600 - created).max(1) as u64;
        let modified = created + self.rng.below(span) as i64;
        (created, modified)
    }

    fn folder(&mut self, parent: u64, owner: u32, name: &str) -> u64 {
        let name = unique_name(self.state, parent, name);
        let (created, modified) = self.times();
        self.state.insert_node(
            parent,
            owner,
            name,
            Kind::Folder,
            Content::None,
            created,
            modified,
        )
    }

    fn file(&mut self, parent: u64, owner: u32, name: &str, content: Content) -> u64 {
        let name = unique_name(self.state, parent, name);
        let (created, modified) = self.times();
        self.state
            .insert_node(parent, owner, name, Kind::File, content, created, modified)
    }

    fn folder_name(&mut self) -> String {
        let base = *self.rng.pick(FOLDERS);
        if self.rng.chance(40) {
            self.counter += 1;
            format!("{base} {}", self.counter)
        } else {
            base.to_string()
        }
    }

    fn base_name(&mut self) -> String {
        self.counter += 1;
        let n = self.counter;
        let adjective = *self.rng.pick(ADJECTIVES);
        let noun = *self.rng.pick(NOUNS);
        match self.rng.below(100) {
            0..=7 => format!("{adjective} \"{noun}\" {n:04}"),
            8..=13 => format!("{adjective}'s {noun} {n:04}"),
            14..=23 => format!("{} {noun} {n:04}", self.rng.pick(UNICODE)),
            24..=29 => format!("{adjective}_{noun}-{n}").replace(' ', "_"),
            _ => format!("{adjective} {noun} {n:04}"),
        }
    }

    fn random_file(&mut self, parent: u64, owner: u32) -> u64 {
        let base = self.base_name();
        let seed = self.rng.next_u64();
        let roll = self.rng.below(100);
        let (ext, content): (&str, Content) = match roll {
            0..=61 => {
                let format = match roll {
                    0..=17 => TextFormat::Txt,
                    18..=31 => TextFormat::Md,
                    32..=41 => TextFormat::Csv,
                    42..=51 => TextFormat::Json,
                    _ => TextFormat::Html,
                };
                let size = MIN_TEXT_SIZE + self.rng.below(6_000);
                (format.extension(), Content::Text { seed, format, size })
            }
            62..=63 => ("txt", Content::Static("")),
            64..=65 => {
                let ext = *self.rng.pick(&["txt", "csv", "mp4", "zip"]);
                let size = 10 * MIB + 1 + self.rng.below(6 * MIB);
                (ext, Content::Big { seed, size })
            }
            _ => {
                let format = *self.rng.pick(&[
                    BinaryFormat::Png,
                    BinaryFormat::Jpg,
                    BinaryFormat::Zip,
                    BinaryFormat::Exe,
                    BinaryFormat::Mp4,
                    BinaryFormat::Bin,
                ]);
                let size = 256 + self.rng.below(60_000);
                (format.extension(), Content::Binary { seed, format, size })
            }
        };
        self.file(parent, owner, &format!("{base}.{ext}"), content)
    }
}
