//! The demo tree: a small company's Box with real, searchable documents.
//!
//! Used by `tributary demo` and by end-to-end tests that search for actual words ("indemnify",
//! "failover", "Zürich"). Paths are relative to the owner's "All Files".

use super::content::{BinaryFormat, Content};
use super::model::{Accessor, Kind, State};
use super::tree::{seed_collab, unique_name};
use super::util::CLOCK_START;

const MIB: u64 = 1024 * 1024;

enum Body {
    Text(&'static str),
    Binary(BinaryFormat, u64),
    /// Lazily generated; never allocated unless downloaded.
    Big(u64),
}

const ADA: u32 = 0;
const GRACE: u32 = 1;
const ALAN: u32 = 2;

const FILES: &[(u32, &str, Body)] = &[
    (ADA, "README.md", Body::Text(README)),
    (
        ADA,
        "Contracts/Acme master services agreement.txt",
        Body::Text(ACME_MSA),
    ),
    (
        ADA,
        "Contracts/Globex NDA (signed).txt",
        Body::Text(GLOBEX_NDA),
    ),
    (
        ADA,
        "Contracts/Archive/Initech renewal 2019.txt",
        Body::Text(INITECH),
    ),
    (
        ADA,
        "Engineering/Runbooks/On-call handbook.md",
        Body::Text(ONCALL),
    ),
    (
        ADA,
        "Engineering/Runbooks/Database failover.md",
        Body::Text(FAILOVER),
    ),
    (
        ADA,
        "Engineering/Architecture decisions/ADR-001 Use event streams for sync.md",
        Body::Text(ADR_001),
    ),
    (
        ADA,
        "Engineering/config/search-service.json",
        Body::Text(SEARCH_JSON),
    ),
    (
        ADA,
        "Engineering/config/feature flags.json",
        Body::Text(FLAGS_JSON),
    ),
    (
        ADA,
        "Finance/Q3 2024 revenue by region.csv",
        Body::Text(REVENUE_CSV),
    ),
    (ADA, "Finance/Expense policy.html", Body::Text(EXPENSE_HTML)),
    (
        ADA,
        "Finance/Invoices/Invoice 2024-0042 – Acme.txt",
        Body::Text(INVOICE),
    ),
    (ADA, "Marketing/Launch page.html", Body::Text(LAUNCH_HTML)),
    (
        ADA,
        "Marketing/Brand voice “guidelines”.md",
        Body::Text(BRAND),
    ),
    (
        ADA,
        "Marketing/Press/Press release – Tributary 1.0.md",
        Body::Text(PRESS),
    ),
    (ADA, "Notes/Café \"menu\" ideas.md", Body::Text(CAFE)),
    (ADA, "Notes/Résumé – José Müller.txt", Body::Text(RESUME)),
    (ADA, "Notes/会議メモ 2024-05.md", Body::Text(KAIGI)),
    (ADA, "Notes/Empty placeholder.txt", Body::Text("")),
    (
        ADA,
        "Photos/Team offsite.jpg",
        Body::Binary(BinaryFormat::Jpg, 48_213),
    ),
    (
        ADA,
        "Photos/Whiteboard sketch.png",
        Body::Binary(BinaryFormat::Png, 23_517),
    ),
    (
        ADA,
        "Videos/All-hands recording 2024-06.mp4",
        Body::Big(48 * MIB + 12_345),
    ),
    (
        ADA,
        "Datasets/Sensor export (full).csv",
        Body::Big(12 * MIB + 77),
    ),
    (
        ADA,
        "Archive/old-backup.zip",
        Body::Binary(BinaryFormat::Zip, 9_001),
    ),
    (ADA, "Team Handbook/Welcome.md", Body::Text(WELCOME)),
    (
        ADA,
        "Team Handbook/Benefits overview.html",
        Body::Text(BENEFITS_HTML),
    ),
    (
        ADA,
        "Team Handbook/Holiday calendar 2025.csv",
        Body::Text(HOLIDAYS_CSV),
    ),
    (
        GRACE,
        "Design Reviews/Search relevance review.md",
        Body::Text(RELEVANCE),
    ),
    (
        GRACE,
        "Design Reviews/Mockups/Results page v2.html",
        Body::Text(RESULTS_HTML),
    ),
    (
        GRACE,
        "Design Reviews/Mockups/Color palette.json",
        Body::Text(PALETTE_JSON),
    ),
    (GRACE, "Compiler notes/COBOL history.txt", Body::Text(COBOL)),
    (ALAN, "Budget FY25.csv", Body::Text(BUDGET_CSV)),
    (
        ALAN,
        "Research/Computable numbers summary.md",
        Body::Text(COMPUTABLE),
    ),
    (
        ALAN,
        "Research/Enigma settings (do not share).txt",
        Body::Text(ENIGMA),
    ),
];

pub(crate) fn populate(state: &mut State) {
    let total = FILES.len() as i64;
    for (index, (owner, path, body)) in FILES.iter().enumerate() {
        // Older files first, a few days apart, modified a few hours after creation.
        let created = CLOCK_START - (total - index as i64) * 3 * 86_400;
        let modified = created + (index as i64 % 5 + 1) * 3_600;
        let mut parent = State::root_of(*owner);
        let mut parts: Vec<&str> = path.split('/').collect();
        let file_name = parts.pop().unwrap_or("untitled.txt");
        for folder in parts {
            parent = ensure_folder(state, parent, *owner, folder, created);
        }
        let content = match body {
            Body::Text(text) => Content::Static(text),
            Body::Binary(format, size) => Content::Binary {
                seed: 0xDE30 + index as u64,
                format: *format,
                size: *size,
            },
            Body::Big(size) => Content::Big {
                seed: 0xDE30 + index as u64,
                size: *size,
            },
        };
        let name = unique_name(state, parent, file_name);
        state.insert_node(parent, *owner, name, Kind::File, content, created, modified);
    }
    let find = |state: &State, owner: u32, name: &str| {
        state
            .nodes
            .get(&State::root_of(owner))
            .and_then(|root| {
                root.children
                    .iter()
                    .find(|k| k.lname == name.to_lowercase())
            })
            .map(|k| k.id)
    };
    if let Some(handbook) = find(state, ADA, "Team Handbook") {
        seed_collab(state, handbook, Accessor::Group(0), "viewer");
    }
    if let Some(finance) = find(state, ADA, "Finance") {
        seed_collab(state, finance, Accessor::User(ALAN), "viewer");
    }
    if let Some(design) = find(state, GRACE, "Design Reviews") {
        seed_collab(state, design, Accessor::User(ADA), "editor");
    }
    if let Some(budget) = find(state, ALAN, "Budget FY25.csv") {
        seed_collab(state, budget, Accessor::User(ADA), "viewer");
    }
}

fn ensure_folder(state: &mut State, parent: u64, owner: u32, name: &str, created: i64) -> u64 {
    let lname = name.to_lowercase();
    let existing = state
        .nodes
        .get(&parent)
        .and_then(|p| p.children.iter().find(|k| k.rank == 0 && k.lname == lname))
        .map(|k| k.id);
    existing.unwrap_or_else(|| {
        state.insert_node(
            parent,
            owner,
            name.to_string(),
            Kind::Folder,
            Content::None,
            created,
            created,
        )
    })
}

const README: &str = "\
# Ada's Box

This account holds contracts, runbooks, finance reports and marketing material for
the Tributary project. Shared folders: Team Handbook (Engineering group), Finance (Alan),
Design Reviews (from Grace).
";

const ACME_MSA: &str = "\
MASTER SERVICES AGREEMENT

This Master Services Agreement is entered into between Acme Corporation (\"Customer\")
and Tributary Labs Inc. (\"Provider\").

1. Services. Provider will deliver search indexing services as described in each
Statement of Work.
2. Fees. Customer pays invoices within thirty (30) days. Late payments accrue interest at
1.5% per month.
3. Term and termination. The initial term is twenty-four (24) months. Either party may
terminate for material breach with sixty (60) days written notice.
4. Indemnification. Provider shall indemnify and hold harmless Customer against
third-party claims arising from infringement of intellectual property.
5. Limitation of liability. Neither party is liable for indirect or consequential damages.
6. Governing law. This Agreement is governed by the laws of the State of Delaware.

Signed: Wile E. Coyote (Acme) and Ada Lovelace (Tributary Labs).
";

const GLOBEX_NDA: &str = "\
MUTUAL NON-DISCLOSURE AGREEMENT

Globex Corporation and Tributary Labs agree to keep each other's Confidential Information
secret for five (5) years. Confidential Information excludes information that is publicly
available. Signed by Hank Scorpio for Globex.
";

const INITECH: &str = "\
Initech renewal 2019

Renewal of the TPS report processing contract for another year at the same rate.
Contact: Bill Lumbergh. Status: expired, kept for the archive.
";

const ONCALL: &str = "\
# On-call handbook

## Before your shift
- Make sure you can reach the pager and the status page.
- Read the last week's incident postmortems.

## When paged
1. Acknowledge within 5 minutes.
2. Check the search latency dashboard and the ingest queue depth.
3. If the index is read-only, follow *Database failover*.

## Escalation
Escalate to the secondary after 20 minutes, then to Ada.
";

const FAILOVER: &str = "\
# Database failover

Use this runbook when the primary database is unreachable for more than two minutes.

1. Freeze writes: `tributary admin pause-sync`.
2. Promote the replica in the secondary region.
3. Point the connection string at the new primary and restart the workers.
4. Resume sync and watch replication lag until it is under one second.

Expected failover time: under ten minutes.
";

const ADR_001: &str = "\
# ADR-001: Use event streams for incremental sync

Status: accepted

## Context
Re-listing every folder on each sync is slow and costs API quota.

## Decision
Use the Box events API (`stream_position`) and the Dropbox list_folder cursor so that the cost
of an incremental sync is proportional to the number of changes. De-duplicate events by
`event_id`, since Box may deliver them more than once.

## Consequences
We must persist stream positions and refresh tokens between runs.
";

const SEARCH_JSON: &str = "\
{
  \"service\": \"search\",
  \"replicas\": 3,
  \"shards\": 12,
  \"analyzers\": [\"standard\", \"icu_folding\"],
  \"max_result_window\": 10000,
  \"owner\": \"platform-team\"
}
";

const FLAGS_JSON: &str = "\
{
  \"flags\": [
    {\"name\": \"semantic_rerank\", \"enabled\": false, \"rollout\": 0},
    {\"name\": \"typo_tolerance\", \"enabled\": true, \"rollout\": 100},
    {\"name\": \"zurich_datacenter\", \"enabled\": true, \"rollout\": 25}
  ]
}
";

const REVENUE_CSV: &str = "\
region,quarter,revenue_usd,growth_pct
North America,Q3 2024,1250000,12.5
Europe,Q3 2024,830000,9.1
Asia Pacific,Q3 2024,610000,21.4
Latin America,Q3 2024,145000,4.2
";

const EXPENSE_HTML: &str = "\
<!DOCTYPE html>
<html><head><title>Expense policy</title></head><body>
<h1>Expense policy</h1>
<p>Employees may expense travel, meals with customers, and conference tickets.</p>
<ul><li>Hotels: up to 250 USD per night.</li><li>Meals: up to 75 USD per day.</li>
<li>Receipts are required for anything over 25 USD.</li></ul>
<p>Submit reports within 30 days through the finance portal.</p>
</body></html>
";

const INVOICE: &str = "\
INVOICE 2024-0042

Bill to: Acme Corporation, 1 Desert Road, Phoenix AZ
Description: Search indexing services, September 2024
Amount due: 42,000.00 USD
Due date: 2024-10-31
";

const LAUNCH_HTML: &str = "\
<!DOCTYPE html>
<html><head><title>Tributary 1.0 launch</title></head><body>
<h1>Search everything your team stores</h1>
<p>Tributary keeps Dropbox and Box in sync with your search index, with permissions intact.</p>
<a href=\"/signup\">Start free trial</a>
</body></html>
";

const BRAND: &str = "\
# Brand voice “guidelines”

We sound confident, plain and warm. Prefer short sentences. Never say \"synergy\".
Our mascot is a small river otter named Delta.
";

const PRESS: &str = "\
# Press release – Tributary 1.0

SAN FRANCISCO — Tributary Labs today announced Tributary 1.0, a connector host that indexes
Dropbox and Box content with document-level security. \"Search should respect who can see
what,\" said Ada Lovelace, head of engineering.
";

const CAFE: &str = "\
# Café \"menu\" ideas

- Flat white and cortado
- Crème brûlée on Fridays
- Oat milk for everyone
- A \"quiet\" corner without meetings
";

const RESUME: &str = "\
Résumé – José Müller

Senior search engineer, Zürich. Ten years of experience with inverted indexes, relevance
tuning and multilingual analyzers (German, Spanish, Japanese). Languages: español, Deutsch,
English.
";

const KAIGI: &str = "\
# 会議メモ 2024-05

出席者: Ada, Grace, Alan
議題: 検索の品質と同期の遅延
決定事項: 東京リージョンを追加する。
";

const WELCOME: &str = "\
# Welcome to the team

Your first week: set up your laptop, meet your onboarding buddy, and ship a small fix.
The engineering wiki, the on-call rota and the holiday calendar live in this folder.
";

const BENEFITS_HTML: &str = "\
<!DOCTYPE html>
<html><head><title>Benefits overview</title></head><body>
<h1>Benefits</h1><p>Health insurance, 25 days of vacation, a learning budget of 1500 USD per
year, and parental leave of 16 weeks.</p>
</body></html>
";

const HOLIDAYS_CSV: &str = "\
date,holiday,offices
2025-01-01,New Year's Day,all
2025-05-26,Memorial Day,US
2025-08-01,Swiss National Day,Zürich
2025-12-25,Christmas Day,all
";

const RELEVANCE: &str = "\
# Search relevance review

Findings from the September review: exact title matches should outrank body matches;
stale documents (older than two years) should be demoted; synonyms for \"invoice\" and
\"bill\" are missing. Owner: Grace Hopper.
";

const RESULTS_HTML: &str = "\
<!DOCTYPE html>
<html><head><title>Results page v2</title></head><body>
<h1>Results</h1><p>Cards show the file name, the path, who modified it and a highlighted
snippet. Facets: source (Dropbox, Box), file type, modified date.</p>
</body></html>
";

const PALETTE_JSON: &str = "\
{
  \"primary\": \"#1f6feb\",
  \"secondary\": \"#8957e5\",
  \"success\": \"#2da44e\",
  \"warning\": \"#bf8700\",
  \"name\": \"River\"
}
";

const COBOL: &str = "\
COBOL history

COBOL (Common Business-Oriented Language) was designed in 1959 by the CODASYL committee.
Notes for a talk about compilers, debugging and the first actual bug found in a relay.
";

const BUDGET_CSV: &str = "\
department,fy25_budget_usd,headcount
Research,2400000,14
Engineering,5100000,38
Design,900000,6
Operations,700000,5
";

const COMPUTABLE: &str = "\
# On computable numbers — summary

A number is computable if its decimal expansion can be written down by a machine. The
Entscheidungsproblem has no general solution: no machine decides whether an arbitrary
machine halts.
";

const ENIGMA: &str = "\
Enigma settings (do not share)

Rotor order: II IV V. Ring settings: 02 21 12. Plugboard: AV BS CG DL FU HZ IN KM OW RX.
This file is private to Alan: nobody else should ever find it in search.
";
