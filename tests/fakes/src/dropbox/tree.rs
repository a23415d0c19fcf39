//! Deterministic starting content for the fake: generated trees of any size and a small,
//! human-meaningful demo tree, plus the fixed team every tree lives in.
//!
//! The team is always the same: four members (Alex Doe is the admin and owns the refresh
//! tokens), two external accounts that share files with Alex, three groups and two team folders
//! ("Engineering" and "Company") in the team space. Trees only add content.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::content::{self, Flavor, Rng, base62, mix};
use super::state::{
    Access, Account, Body, FileNode, Group, Member, Node, NodeKind, NsKind, ReceivedFile, State,
    TEAM_ROOT_NS,
};

/// Seconds since the epoch of 2023-01-01T00:00:00Z: generated files are modified after this.
const GENERATED_FROM: i64 = 1_672_531_200;
/// 2025-01-06T09:00:00Z: the fake clock starts here and advances a minute per mutation.
pub(crate) const CLOCK_START: i64 = 1_736_154_000;
/// Above Elastic's 10 MiB download limit.
const MIB: u64 = 1024 * 1024;

/// Home namespace of account `i` (team members only).
pub(crate) fn home_ns(i: usize) -> String {
    format!("{}", 1_000_000_002 + i as u64)
}

/// Namespace of the "Engineering" team folder.
pub(crate) const ENGINEERING_NS: &str = "1000000101";
/// Namespace of the "Company" team folder.
pub(crate) const COMPANY_NS: &str = "1000000102";

pub(crate) fn account_id(i: usize) -> String {
    format!("dbid:AA{}", base62(mix(i as u64, 0xACC0), 41))
}

fn team_member_id(i: usize) -> String {
    format!("dbmid:AA{}", base62(mix(i as u64, 0x7EA3), 41))
}

pub(crate) fn group_id(i: usize) -> String {
    format!(
        "g:{:016x}{:016x}",
        mix(i as u64, 0x6A0),
        mix(i as u64, 0x6A1)
    )
}

/// `(given, surname, email, team member?, company)`.
const PEOPLE: &[(&str, &str, &str, bool, &str)] = &[
    ("Alex", "Doe", "alex.doe@acme.example", true, TEAM_NAME_STR),
    (
        "Bob",
        "Smith",
        "bob.smith@acme.example",
        true,
        TEAM_NAME_STR,
    ),
    (
        "Carol",
        "Jones",
        "carol.jones@acme.example",
        true,
        TEAM_NAME_STR,
    ),
    ("Dana", "Lee", "dana.lee@acme.example", true, TEAM_NAME_STR),
    ("Jordan", "Rivera", "jordan@globex.example", false, "Globex"),
    ("Priya", "Patel", "priya@initech.example", false, "Initech"),
];
const TEAM_NAME_STR: &str = super::state::TEAM_NAME;

/// Index of Bob, Carol, Jordan (external) and Priya (external) in the account list.
pub(crate) const BOB: usize = 1;
pub(crate) const CAROL: usize = 2;
pub(crate) const JORDAN: usize = 4;
pub(crate) const PRIYA: usize = 5;

/// `(name, member accounts)`; group 0 = Engineering, 1 = Finance, 2 = Everyone at Acme.
const GROUPS: &[(&str, &[usize])] = &[
    ("Engineering", &[0, 1]),
    ("Finance", &[2]),
    ("Everyone at Acme", &[0, 1, 2, 3]),
];

#[derive(Clone, Debug)]
pub(crate) enum BodySpec {
    Bytes(Arc<Vec<u8>>),
    Generated { seed: u64, size: u64 },
}

#[derive(Clone, Debug)]
pub(crate) enum Item {
    Folder(String),
    File {
        path: String,
        body: BodySpec,
        modified: i64,
    },
    ShareFolder {
        path: String,
        members: Vec<Member>,
    },
    ShareFile {
        path: String,
        member: Member,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct ReceivedSpec {
    name: String,
    body: BodySpec,
    owner: usize,
    invited: i64,
}

/// A deterministic description of what the fake Dropbox holds when it starts.
///
/// Paths are in the admin's (Alex Doe's) home folder, or `ns:<namespace id>/…` for team
/// folders. Generated trees mix folders, text-like files (`.txt .md .csv .json .html .py
/// .xml`), Paper docs, files above 10 MiB (bodies generated only when downloaded), binaries
/// with unsupported extensions, and names with spaces, quotes and non-ASCII characters.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    pub(crate) items: Vec<Item>,
    pub(crate) received: Vec<ReceivedSpec>,
    home_entries: usize,
}

impl Tree {
    /// No content at all (the team folders exist, empty).
    pub fn empty() -> Tree {
        Tree::default()
    }

    /// 100 entries in the home folder (+5 in team folders, 4 received files).
    pub fn small() -> Tree {
        Tree::generated(1, 100)
    }

    /// 10 000 entries in the home folder (+500 in team folders).
    pub fn medium() -> Tree {
        Tree::generated(2, 10_000)
    }

    /// 100 000 entries in the home folder (+5 000 in team folders).
    pub fn large() -> Tree {
        Tree::generated(3, 100_000)
    }

    /// Exactly `entries` files and folders in the home folder, `entries / 20` in the team
    /// folders and four received files, all derived from `seed`.
    pub fn generated(seed: u64, entries: usize) -> Tree {
        let mut tree = Tree::default();
        let mut rng = Rng::new(seed);
        if entries > 0 {
            let shared = "/Shared with Bob".to_string();
            tree.items.push(Item::Folder(shared.clone()));
            tree.items.push(Item::ShareFolder {
                path: shared,
                members: vec![
                    Member::account(&account_id(BOB), Access::Editor),
                    Member::group(&group_id(1), Access::Viewer),
                    Member::email("contractor@example.org", Access::Viewer),
                ],
            });
        }
        generate_into(
            &mut tree.items,
            &mut rng,
            "",
            entries.saturating_sub(1),
            seed,
            true,
        );
        let team = entries / 20;
        generate_into(
            &mut tree.items,
            &mut rng,
            &format!("ns:{ENGINEERING_NS}"),
            team / 2,
            seed.wrapping_add(1_000_003),
            false,
        );
        generate_into(
            &mut tree.items,
            &mut rng,
            &format!("ns:{COMPANY_NS}"),
            team - team / 2,
            seed.wrapping_add(2_000_003),
            false,
        );
        if entries > 0 {
            for (i, name) in [
                "Partner proposal.txt",
                "Joint roadmap.md",
                "Price list.csv",
                "Kickoff recording.mp4",
            ]
            .iter()
            .enumerate()
            {
                tree.received.push(ReceivedSpec {
                    name: name.to_string(),
                    body: BodySpec::Generated {
                        seed: mix(seed, 0xEC0 + i as u64),
                        size: rng.range(400, 4000),
                    },
                    owner: if i % 2 == 0 { JORDAN } else { PRIYA },
                    invited: GENERATED_FROM + 600 * 86_400 + i as i64 * 3_600,
                });
            }
        }
        tree.home_entries = entries;
        tree
    }

    /// A few dozen human-meaningful files with real text (see the module docs of
    /// `dropbox`), including a Paper doc, a shared folder, team folder content and one
    /// 12 MiB CSV whose bytes are generated only when downloaded.
    pub fn demo() -> Tree {
        let mut tree = Tree::default();
        let mut t = GENERATED_FROM + 400 * 86_400;
        for (path, text) in DEMO_FILES {
            t += 86_400 + 3_917;
            tree.items.push(Item::File {
                path: path.to_string(),
                body: BodySpec::Bytes(Arc::new(text.as_bytes().to_vec())),
                modified: t,
            });
        }
        for (path, size) in [
            ("/Photos/Beach sunset.jpg", 48_213u64),
            ("/Photos/Team offsite 2024.png", 91_377),
            ("/Archive/old-laptop-backup.zip", 1_250_000),
        ] {
            t += 86_400;
            tree.items.push(Item::File {
                path: path.to_string(),
                body: BodySpec::Generated {
                    seed: mix(size, 0xD3),
                    size,
                },
                modified: t,
            });
        }
        tree.items.push(Item::File {
            path: "/Archive/Full customer export.csv".into(),
            body: BodySpec::Generated {
                seed: 0xB16,
                size: 12 * MIB + 345,
            },
            modified: t + 3_600,
        });
        tree.items.push(Item::ShareFolder {
            path: "/Shared Projects".into(),
            members: vec![
                Member::account(&account_id(BOB), Access::Editor),
                Member::group(&group_id(1), Access::Viewer),
            ],
        });
        tree.items.push(Item::ShareFile {
            path: "/Reports/Q3 quarterly revenue.txt".into(),
            member: Member::account(&account_id(CAROL), Access::Viewer),
        });
        tree.items.push(Item::ShareFile {
            path: "/Reports/Q3 quarterly revenue.txt".into(),
            member: Member::email("auditor@kpmg.example", Access::Viewer),
        });
        for (i, (name, text, owner)) in DEMO_RECEIVED.iter().enumerate() {
            tree.received.push(ReceivedSpec {
                name: name.to_string(),
                body: BodySpec::Bytes(Arc::new(text.as_bytes().to_vec())),
                owner: *owner,
                invited: t + (i as i64 + 1) * 7_200,
            });
        }
        tree.home_entries = usize::MAX; // computed on demand by `FakeDropbox::entries`
        tree
    }

    /// Adds a file with these bytes (builder style). Missing parent folders are created.
    pub fn with_file(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Tree {
        self.items.push(Item::File {
            path: path.to_string(),
            body: BodySpec::Bytes(Arc::new(bytes.into())),
            modified: GENERATED_FROM + 700 * 86_400,
        });
        self
    }

    /// Adds a file whose bytes are shared with other files (builder style): thousands of files
    /// of a bench cost one body in memory and are served without a copy.
    pub fn with_shared_file(mut self, path: &str, bytes: Arc<Vec<u8>>) -> Tree {
        self.items.push(Item::File {
            path: path.to_string(),
            body: BodySpec::Bytes(bytes),
            modified: GENERATED_FROM + 700 * 86_400,
        });
        self
    }

    /// Adds a file of `size` bytes whose content is generated on demand.
    pub fn with_generated_file(mut self, path: &str, size: u64) -> Tree {
        let seed = mix(self.items.len() as u64, size);
        self.items.push(Item::File {
            path: path.to_string(),
            body: BodySpec::Generated { seed, size },
            modified: GENERATED_FROM + 700 * 86_400,
        });
        self
    }

    /// Adds an empty folder.
    pub fn with_folder(mut self, path: &str) -> Tree {
        self.items.push(Item::Folder(path.to_string()));
        self
    }

    /// How many entries `generated` put in the home folder (`None` for hand-built trees).
    pub fn home_entry_count(&self) -> Option<usize> {
        (self.home_entries != usize::MAX && self.home_entries > 0).then_some(self.home_entries)
    }
}

const FILE_TEMPLATES: &[(&str, &str)] = &[
    ("Quarterly report", "txt"),
    ("Meeting notes", "md"),
    ("budget_", "csv"),
    ("export-", "json"),
    ("landing page", "html"),
    ("etl_job_", "py"),
    ("O'Brien memo", "txt"),
    ("\"Quoted\" plan", "md"),
    ("Résumé", "txt"),
    ("Überblick", "md"),
    ("会议纪要", "txt"),
    ("café menu", "html"),
    ("config", "xml"),
    ("Release checklist", "md"),
    ("inventory", "csv"),
    ("photo_", "jpg"),
    ("scan", "png"),
    ("backup", "zip"),
    ("clip", "mp4"),
    ("installer", "exe"),
];

const FOLDER_NAMES: &[&str] = &[
    "Projects",
    "Archive",
    "Clients",
    "Team Ω",
    "Client \"Acme\"",
    "2024 Planning",
    "Données",
    "Misc",
    "Drafts",
    "Year-end",
];

/// Appends `count` generated entries below `base` ("" = home, or `ns:<id>`).
fn generate_into(
    items: &mut Vec<Item>,
    rng: &mut Rng,
    base: &str,
    count: usize,
    seed: u64,
    with_shares: bool,
) {
    // Folders we may put things in: (path, depth). The home root and, for home content,
    // the shared folder created by the caller.
    let mut folders: Vec<(String, usize)> = vec![(base.to_string(), 0)];
    if with_shares {
        folders.push((format!("{base}/Shared with Bob"), 1));
    }
    for i in 0..count {
        let parent = if rng.one_in(2) {
            let recent = folders.len().min(8) as u64;
            folders.len() - 1 - rng.below(recent) as usize
        } else {
            rng.below(folders.len() as u64) as usize
        };
        let (parent, depth) = folders
            .get(parent)
            .cloned()
            .unwrap_or_else(|| (base.to_string(), 0));
        let (parent, depth) = if depth >= 6 {
            (base.to_string(), 0)
        } else {
            (parent, depth)
        };
        if i % 8 == 0 {
            let name = format!("{} {i}", rng.pick(FOLDER_NAMES));
            let path = format!("{parent}/{name}");
            items.push(Item::Folder(path.clone()));
            folders.push((path, depth + 1));
            continue;
        }
        let file_seed = mix(seed, i as u64);
        let modified = GENERATED_FROM + rng.below(700 * 86_400) as i64;
        let (name, size) = if i % 97 == 50 {
            let ext = if rng.one_in(2) { "csv" } else { "txt" };
            (
                format!("big dataset {i}.{ext}"),
                10 * MIB + rng.range(1, 2 * MIB),
            )
        } else if i % 29 == 7 {
            (format!("Design doc {i}.paper"), rng.range(300, 4000))
        } else {
            let i_tpl = rng.below(FILE_TEMPLATES.len() as u64) as usize;
            let (stem, ext) = FILE_TEMPLATES
                .get(i_tpl)
                .copied()
                .unwrap_or(("file", "txt"));
            let sep = if stem.ends_with('_') || stem.ends_with('-') {
                ""
            } else {
                " "
            };
            let name = format!("{stem}{sep}{i}.{ext}");
            let size = if Flavor::for_name(&name).is_text() {
                rng.range(300, 6000)
            } else {
                rng.range(2_000, 200_000)
            };
            (name, size)
        };
        let path = format!("{parent}/{name}");
        items.push(Item::File {
            path: path.clone(),
            body: BodySpec::Generated {
                seed: file_seed,
                size,
            },
            modified,
        });
        if with_shares && i % 41 == 3 {
            let member = if rng.one_in(2) {
                Member::account(&account_id(CAROL), Access::Viewer)
            } else {
                Member::email("reviewer@example.net", Access::Editor)
            };
            items.push(Item::ShareFile { path, member });
        }
    }
}

/// Builds the state for `tree`: the fixed team, the tree's content, an empty change log.
pub(crate) fn build(tree: &Tree, salt: String) -> anyhow::Result<State> {
    let mut s = State::new(salt, CLOCK_START);
    for (i, (given, surname, email, member, company)) in PEOPLE.iter().enumerate() {
        s.accounts.push(Account {
            account_id: account_id(i),
            team_member_id: member.then(|| team_member_id(i)),
            email: email.to_string(),
            given_name: given.to_string(),
            surname: surname.to_string(),
            display_name: format!("{given} {surname}"),
            is_admin: i == 0,
            status: "active".into(),
            joined_on: content::rfc3339(1_615_800_600 + i as i64 * 86_400 * 97),
            home_namespace_id: member.then(|| home_ns(i)),
            company: (!member).then(|| company.to_string()),
        });
    }
    for (i, (name, members)) in GROUPS.iter().enumerate() {
        s.groups.push(Group {
            group_id: group_id(i),
            name: name.to_string(),
            members: members.iter().map(|m| account_id(*m)).collect(),
        });
    }
    s.namespaces.insert(
        TEAM_ROOT_NS.to_string(),
        super::state::Namespace {
            kind: NsKind::TeamRoot,
            mount: String::new(),
            name: String::new(),
        },
    );
    for (i, (given, surname, _, member, _)) in PEOPLE.iter().enumerate() {
        if *member {
            let name = format!("{given} {surname}");
            let key = format!("/{}", name.to_lowercase());
            s.mount(
                &home_ns(i),
                NsKind::Home(i),
                &key,
                &format!("/{name}"),
                &name,
            );
        }
    }
    for (ns, name, group) in [
        (ENGINEERING_NS, "Engineering", 0),
        (COMPANY_NS, "Company", 2),
    ] {
        let key = format!("/{}", name.to_lowercase());
        s.mount(ns, NsKind::TeamFolder, &key, &format!("/{name}"), name);
        s.folder_members.insert(
            ns.to_string(),
            vec![Member::group(&group_id(group), Access::Editor)],
        );
    }
    // Files and folders are collected first and bulk-loaded into the tree: inserting 100 000
    // keys one by one into the BTreeMap is several times slower in debug builds.
    let mut loader = Loader::default();
    for (key, node) in &s.nodes {
        loader.folders.insert(key.clone(), node.display.clone());
    }
    let mut deferred = Vec::new();
    for item in &tree.items {
        match item {
            Item::Folder(path) => {
                let (mount, display, rest) = s.test_base(path)?;
                loader.folder(&mut s, &mount, &display, rest)?;
            }
            Item::File {
                path,
                body,
                modified,
            } => loader.file(&mut s, path, body, *modified)?,
            Item::ShareFolder { .. } | Item::ShareFile { .. } => deferred.push(item),
        }
    }
    loader.finish(&mut s)?;
    for item in deferred {
        match item {
            Item::ShareFolder { path, members } => {
                let ns = s.share_folder(path, false)?;
                if let Some(list) = s.folder_members.get_mut(&ns) {
                    list.extend(members.iter().cloned());
                }
            }
            Item::ShareFile { path, member } => {
                let key = s.test_key(path)?;
                if let Some(id) = s.nodes.get(&key).map(|n| n.id.clone()) {
                    s.file_members.entry(id).or_default().push(member.clone());
                }
            }
            Item::Folder(_) | Item::File { .. } => {}
        }
    }
    for spec in &tree.received {
        let (body, size) = match &spec.body {
            BodySpec::Bytes(b) => (Body::Bytes(b.clone()), b.len() as u64),
            BodySpec::Generated { seed, size } => (
                Body::Generated {
                    seed: *seed,
                    flavor: Flavor::for_name(&spec.name),
                },
                *size,
            ),
        };
        let received = new_received(&mut s, &spec.name, body, size, spec.owner, spec.invited);
        s.received.push(received);
    }
    s.log.clear();
    s.last_change.clear();
    Ok(s)
}

/// Accumulates the nodes of a tree before they are bulk-loaded into the state.
#[derive(Default)]
struct Loader {
    /// Folder key -> display path (existing mounts and new folders).
    folders: HashMap<String, String>,
    nodes: Vec<(String, Node)>,
}

impl Loader {
    /// Finds or creates the folder `rest` below a mount; returns `(key, display)`.
    fn folder(
        &mut self,
        s: &mut State,
        mount: &str,
        mount_display: &str,
        rest: &str,
    ) -> anyhow::Result<(String, String)> {
        let key = format!("{mount}{}", rest.to_lowercase());
        if let Some(display) = self.folders.get(&key) {
            return Ok((key, display.clone()));
        }
        let (mut k, mut d) = (mount.to_string(), mount_display.to_string());
        for comp in rest.split('/').skip(1) {
            k = format!("{k}/{}", comp.to_lowercase());
            d = match self.folders.get(&k) {
                Some(display) => display.clone(),
                None => {
                    let display = format!("{d}/{comp}");
                    self.folders.insert(k.clone(), display.clone());
                    self.nodes.push((
                        k.clone(),
                        Node {
                            id: s.new_id(),
                            name: comp.to_string(),
                            display: display.clone(),
                            kind: NodeKind::Folder { ns: None },
                        },
                    ));
                    display
                }
            };
        }
        Ok((k, d))
    }

    fn file(
        &mut self,
        s: &mut State,
        path: &str,
        body: &BodySpec,
        modified: i64,
    ) -> anyhow::Result<()> {
        let (mount, mount_display, rest) = s.test_base(path)?;
        let Some((parent_rest, name)) = rest.rsplit_once('/').filter(|(_, n)| !n.is_empty()) else {
            anyhow::bail!("{path:?} does not name a file");
        };
        let (parent_key, parent_display) = if parent_rest.is_empty() {
            (mount.clone(), mount_display)
        } else {
            self.folder(s, &mount, &mount_display, parent_rest)?
        };
        let key = format!("{parent_key}/{}", name.to_lowercase());
        let (body, size, hash) = match body {
            BodySpec::Bytes(b) => (
                Body::Bytes(b.clone()),
                b.len() as u64,
                Some(content::content_hash(b)),
            ),
            BodySpec::Generated { seed, size } => (
                Body::Generated {
                    seed: *seed,
                    flavor: Flavor::for_name(name),
                },
                *size,
                None,
            ),
        };
        let modified_by = s.owner_for_test_path(path, &key);
        let node = Node {
            id: s.new_id(),
            name: name.to_string(),
            display: format!("{parent_display}/{name}"),
            kind: NodeKind::File(FileNode {
                size,
                rev: s.new_rev(),
                server_modified: modified,
                client_modified: modified - 37,
                body,
                hash,
                modified_by,
            }),
        };
        self.nodes.push((key, node));
        Ok(())
    }

    /// Moves everything into `s.nodes` and `s.by_id`; errors on duplicate paths.
    fn finish(self, s: &mut State) -> anyhow::Result<()> {
        let mut unsorted = self.nodes;
        unsorted.extend(std::mem::take(&mut s.nodes));
        // Sort indices rather than the (large) entries themselves.
        let mut order: Vec<usize> = (0..unsorted.len()).collect();
        order.sort_unstable_by(|a, b| unsorted[*a].0.cmp(&unsorted[*b].0));
        let mut slots: Vec<Option<(String, Node)>> = unsorted.into_iter().map(Some).collect();
        let all: Vec<(String, Node)> = order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .collect();
        if let Some(w) = all.windows(2).find(|w| w[0].0 == w[1].0) {
            anyhow::bail!("{} exists twice in the tree", w[0].1.display);
        }
        s.by_id.reserve(all.len());
        for (key, node) in &all {
            s.by_id.insert(node.id.clone(), key.clone());
        }
        // Sorted input: std builds the map in one pass.
        s.nodes = all.into_iter().collect::<BTreeMap<_, _>>();
        Ok(())
    }
}

/// A received file with fresh id, rev and shared link.
pub(crate) fn new_received(
    s: &mut State,
    name: &str,
    body: Body,
    size: u64,
    owner: usize,
    invited: i64,
) -> ReceivedFile {
    let id = s.new_id();
    let rev = s.new_rev();
    let token = base62(mix(s.next_id, 0x5C1), 15).to_lowercase();
    let rlkey = base62(mix(s.next_id, 0x71E), 25).to_lowercase();
    ReceivedFile {
        preview_url: format!(
            "https://www.dropbox.com/scl/fi/{token}/{}?rlkey={rlkey}&dl=0",
            content::percent_encode(name)
        ),
        id,
        name: name.to_string(),
        size,
        server_modified: content::rfc3339(invited - 5_400),
        client_modified: content::rfc3339(invited - 5_437),
        time_invited: content::rfc3339(invited),
        rev,
        owner_account_id: s
            .accounts
            .get(owner)
            .map(|a| a.account_id.clone())
            .unwrap_or_default(),
        access: Access::Viewer,
        body,
        link_token: token,
    }
}

const DEMO_RECEIVED: &[(&str, &str, usize)] = &[
    (
        "Globex partnership proposal.txt",
        "Globex partnership proposal\n\nJordan Rivera, Globex, proposes a joint go-to-market \
         programme with Acme for the logistics dashboard. Globex would resell the dashboard to \
         its warehouse customers in Europe and share forty percent of renewal revenue.\n\nNext \
         steps: legal review of the reseller contract, a pricing workshop in Lisbon, and a pilot \
         with two warehouses before the end of the quarter.\n",
        JORDAN,
    ),
    (
        "Initech integration checklist.md",
        "# Initech integration checklist\n\n- Exchange API credentials over the secure portal\n\
         - Map Initech invoice fields to Acme billing codes\n- Run the reconciliation job \
         nightly and compare totals\n- Sign off with Priya Patel before go-live\n\nThe \
         integration must pass the compliance audit (SOC 2) before production traffic.\n",
        PRIYA,
    ),
    (
        "Conference schedule.csv",
        "day,time,room,talk,speaker\nMonday,09:00,Main hall,Keynote: the future of search,\
         Priya Patel\nMonday,11:00,Room B,Incremental sync at scale,Jordan Rivera\nTuesday,\
         10:00,Room A,Document level security in practice,Alex Doe\nTuesday,14:00,Main hall,\
         Closing panel,All speakers\n",
        JORDAN,
    ),
];

/// `(path, text)` of the demo tree's text files.
const DEMO_FILES: &[(&str, &str)] = &[
    (
        "/Reports/Q3 quarterly revenue.txt",
        "Q3 quarterly revenue report\n\nRevenue for the third quarter reached 4.2 million \
         dollars, up 18 percent on the same quarter last year. Subscription renewals drove most \
         of the growth; the Europe region grew fastest at 31 percent.\n\nHighlights\n- Northwind \
         signed a three-year enterprise contract.\n- Churn fell to 2.1 percent after the \
         onboarding redesign.\n- Hardware sales were flat and will be discontinued in Q1.\n\n\
         Risks: currency exposure in Asia, and the delayed pricing update for the starter plan.\n",
    ),
    (
        "/Reports/Q2 quarterly revenue.txt",
        "Q2 quarterly revenue report\n\nRevenue for the second quarter was 3.9 million dollars. \
         The Americas region missed its forecast by 6 percent because two large renewals slipped \
         into July. Marketing spend stayed within budget.\n\nAction items: follow up on the \
         Contoso renewal, and review discount approvals above 20 percent.\n",
    ),
    (
        "/Reports/Annual summary 2024.md",
        "# Annual summary 2024\n\n## Overview\n\nAcme closed 2024 with 15.6 million dollars of \
         revenue and 212 employees. We launched the search dashboard, opened the Lisbon office \
         and passed our first SOC 2 audit.\n\n## Goals for 2025\n\n- Grow annual recurring \
         revenue by 25 percent\n- Reduce support response time below four hours\n- Ship \
         document level security for every connector\n",
    ),
    (
        "/Reports/Regional sales.csv",
        "region,quarter,revenue,deals,top_customer\nEurope,Q1,910000,42,Fabrikam\nEurope,Q2,\
         980000,47,Northwind\nEurope,Q3,1290000,55,Northwind\nAsia,Q1,610000,28,Initech\nAsia,Q2,\
         640000,30,Initech\nAsia,Q3,700000,33,Globex\nAmericas,Q1,1500000,61,Contoso\nAmericas,\
         Q2,1410000,58,Contoso\nAmericas,Q3,1650000,66,Umbrella\n",
    ),
    (
        "/Notes/Meeting notes 2024-09-12.md",
        "# Product sync, 12 September 2024\n\nAttendees: Alex, Bob, Carol, Dana\n\n## Decisions\n\n\
         - The incremental sync beta ships on 1 October.\n- Carol owns the pricing page rewrite.\n\
         - We drop support for the legacy XML export.\n\n## Open questions\n\n- Do we need rate \
         limit dashboards before the beta?\n- Who reviews the security questionnaire from Globex?\n",
    ),
    (
        "/Notes/Ideas for the offsite.md",
        "# Offsite ideas\n\n- Hike to the lighthouse on the first morning\n- Cooking class: \
         everybody makes one dish from their home region\n- Hackathon theme: search relevance\n\
         - Evening: board games and a karaoke contest\n\nBudget: 300 euros per person, Lisbon or \
         Porto.\n",
    ),
    (
        "/Notes/Reading list.txt",
        "Reading list\n\n1. Designing Data-Intensive Applications, Martin Kleppmann\n2. The \
         Mythical Man-Month, Fred Brooks\n3. Thinking in Systems, Donella Meadows\n4. Working \
         in Public, Nadia Eghbal\n\nNotes: start with Kleppmann; the chapters on replication and \
         stream processing matter most for the sync engine.\n",
    ),
    (
        "/Projects/Website/index.html",
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Acme search</title></head>\n\
         <body>\n<h1>Find anything your team has written</h1>\n<p>Acme search indexes Dropbox, \
         Box and your wikis, keeps permissions intact, and updates within seconds of a change.\
         </p>\n<p>Start a free trial today.</p>\n</body></html>\n",
    ),
    (
        "/Projects/Website/about.html",
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>About Acme</title></head>\n\
         <body>\n<h1>About us</h1>\n<p>Acme was founded in 2019 by engineers who were tired of \
         searching five places for one document. We are based in Boston and Lisbon.</p>\n\
         </body></html>\n",
    ),
    (
        "/Projects/Website/config.json",
        "{\n  \"site\": \"acme-search\",\n  \"locales\": [\"en\", \"pt\", \"de\"],\n  \
         \"analytics\": {\"enabled\": true, \"provider\": \"plausible\"},\n  \"features\": \
         {\"pricing_page\": true, \"status_banner\": false}\n}\n",
    ),
    (
        "/Projects/Data pipeline/etl.py",
        "\"\"\"Nightly ETL: load invoices from the billing database into the warehouse.\"\"\"\n\n\
         import csv\n\n\ndef transform(row):\n    \"\"\"Convert cents to dollars and normalise \
         the region name.\"\"\"\n    row[\"amount\"] = int(row[\"amount_cents\"]) / 100\n    \
         row[\"region\"] = row[\"region\"].strip().title()\n    return row\n\n\ndef main(path):\n\
         \x20   with open(path) as f:\n        return [transform(r) for r in csv.DictReader(f)]\n",
    ),
    (
        "/Projects/Data pipeline/README.md",
        "# Data pipeline\n\nThe pipeline copies invoices from billing into the analytics \
         warehouse every night at 02:00 UTC. Failed runs page the on-call engineer.\n\n## \
         Running locally\n\n1. Export a sample with `make sample`.\n2. Run `python etl.py \
         sample.csv`.\n",
    ),
    (
        "/Projects/Launch plan.paper",
        "# Launch plan: incremental sync\n\n## Timeline\n\n- Beta: 1 October\n- General \
         availability: 15 November\n\n## Owners\n\n- Engineering: Bob\n- Marketing: Carol\n- \
         Support readiness: Dana\n\n## Success metrics\n\nNinety percent of syncs finish in \
         under a minute; zero lost documents during the beta.\n",
    ),
    (
        "/Getting started.paper",
        "# Getting started with Dropbox Paper\n\nPaper documents are exported as markdown by \
         the API. Use this page as a checklist for new joiners: set up two-factor \
         authentication, join the Engineering team folder, and read the employee handbook.\n",
    ),
    (
        "/Recipes/Grandma's apple pie.txt",
        "Grandma's apple pie\n\nIngredients: six tart apples, one cup of sugar, cinnamon, \
         nutmeg, butter and two pie crusts.\n\nBake at 220 degrees for fifteen minutes, then at \
         180 degrees for forty-five minutes until the crust is golden.\n",
    ),
    (
        "/Recipes/Crème brûlée.md",
        "# Crème brûlée\n\nServes six. Warm cream with a vanilla pod, whisk into egg yolks and \
         sugar, bake in a water bath at 150 degrees for forty minutes, chill overnight and \
         caramelise the sugar crust with a torch just before serving.\n",
    ),
    (
        "/Travel/Lisbon itinerary.md",
        "# Lisbon itinerary\n\n- Day 1: Alfama walking tour, fado dinner\n- Day 2: Belém tower, \
         pastel de nata tasting, LX Factory\n- Day 3: train to Sintra, Pena palace\n\nHotel: \
         Baixa district, confirmation code LX4471.\n",
    ),
    (
        "/Travel/Packing \"essentials\" list.txt",
        "Packing essentials\n\nPassport, charger, adapter, rain jacket, walking shoes, \
         headphones, a paperback for the flight, and the conference badge.\n",
    ),
    (
        "/Travel/日本 出張メモ.txt",
        "日本 出張メモ (Japan business trip notes)\n\nTokyo meetings with the Initech team on \
         Tuesday; Osaka warehouse visit on Thursday. Bring business cards and the logistics \
         dashboard demo on a laptop with offline data.\n",
    ),
    (
        "/Contacts.json",
        "[\n  {\"name\": \"Bob Smith\", \"role\": \"Engineering lead\", \"email\": \
         \"bob.smith@acme.example\"},\n  {\"name\": \"Carol Jones\", \"role\": \"Finance\", \
         \"email\": \"carol.jones@acme.example\"},\n  {\"name\": \"Jordan Rivera\", \"role\": \
         \"Partner manager, Globex\", \"email\": \"jordan@globex.example\"}\n]\n",
    ),
    (
        "/Shared Projects/Budget 2025.csv",
        "department,q1,q2,q3,q4,owner\nEngineering,420000,430000,450000,470000,Bob\nMarketing,\
         150000,180000,160000,210000,Carol\nSupport,90000,90000,95000,95000,Dana\nOffsite,0,0,\
         60000,0,Alex\n",
    ),
    (
        "/Shared Projects/Vendor contracts.md",
        "# Vendor contracts\n\n| Vendor | Renewal | Notes |\n|---|---|---|\n| Fabrikam hosting \
         | March | negotiate a 10 percent discount |\n| Contoso payroll | June | compliance audit \
         due |\n| Northwind couriers | September | add Lisbon office |\n",
    ),
    (
        "ns:1000000101/Architecture overview.md",
        "# Architecture overview\n\nThe sync engine runs connectors as sandboxed WebAssembly \
         plugins. Each plugin lists changes with a cursor, the host downloads content with \
         bounded concurrency, extracts text and writes batches to the search index.\n\n## \
         Failure handling\n\nRetries with exponential backoff, Retry-After on 429, and a sync \
         never deletes documents when a listing failed.\n",
    ),
    (
        "ns:1000000101/On-call runbook.md",
        "# On-call runbook\n\n1. Acknowledge the page within five minutes.\n2. Check the sync \
         dashboard for rate limiting (429) and token refresh errors.\n3. If the index is \
         behind, pause full syncs and let incremental syncs catch up.\n4. Write a postmortem \
         for any incident longer than thirty minutes.\n",
    ),
    (
        "ns:1000000101/Postmortems/2024-07 index outage.md",
        "# Postmortem: index outage, July 2024\n\nA schema migration locked the documents table \
         for 47 minutes. Searches returned stale results; no data was lost.\n\nRoot cause: the \
         migration ran without a timeout. Fix: online migrations only, with a lock timeout of \
         five seconds.\n",
    ),
    (
        "ns:1000000101/api-spec.json",
        "{\n  \"openapi\": \"3.1.0\",\n  \"info\": {\"title\": \"Acme search API\", \
         \"version\": \"2.3\"},\n  \"paths\": {\"/search\": {\"get\": {\"summary\": \
         \"Full-text search with permission filtering\"}}}\n}\n",
    ),
    (
        "ns:1000000102/Employee handbook.md",
        "# Employee handbook\n\n## Working hours\n\nCore hours are 10:00 to 16:00 in your local \
         time zone. Everything else is flexible.\n\n## Holidays\n\nTwenty-five days of paid \
         holiday plus public holidays. Book leave in the HR portal at least two weeks ahead.\n\n\
         ## Security\n\nUse the password manager, enable two-factor authentication, and never \
         share customer data outside approved tools.\n",
    ),
    (
        "ns:1000000102/Holiday calendar 2025.csv",
        "date,holiday,offices\n2025-01-01,New Year's Day,all\n2025-04-25,Freedom Day,Lisbon\n\
         2025-07-04,Independence Day,Boston\n2025-12-25,Christmas Day,all\n",
    ),
    (
        "ns:1000000102/Security policy.paper",
        "# Security policy\n\nAll laptops use full-disk encryption. Access to production \
         requires hardware security keys. Report phishing to security@acme.example within one \
         hour.\n",
    ),
];
