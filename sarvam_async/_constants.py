"""Every tunable default of sarvam_async, in one place, each with the reason for its value."""

from __future__ import annotations

DEFAULT_BASE_URL = "https://api.sarvam.ai"
API_KEY_ENV = "SARVAM_API_KEY"
BASE_URL_ENV = "SARVAM_BASE_URL"
API_KEY_HEADER = "api-subscription-key"

DEFAULT_TIMEOUT = 60.0
"""Seconds per attempt of an API call; the official SDK's value, ample for these small calls."""
GATE_HELD_SECONDS = 0.05
"""Time in the client's gate that reads as held by the rate limiter rather than by scheduling,
when a call runs out of time before it is sent: a loaded event loop takes milliseconds to
run a ready call, the pace's slots are tenths of a second and more. It picks the message only."""

DEFAULT_MAX_CONNECTIONS = 100
"""aiohttp pool size. Above it, the client's limiter queues calls so none burns its timeout."""

MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""Largest API answer read, counted after decompression. A status of 20 files is a few KB;
32 MiB leaves room for any genuine answer and stops a gzip bomb or a runaway body."""

# Retry policy ---------------------------------------------------------------------------
RETRY_MAX_ATTEMPTS = 8
"""Eight attempts ride out a burst of 429s from a token bucket refilling over a few seconds."""
RETRY_INITIAL_DELAY = 0.5
"""First backoff ceiling: a refused call usually succeeds once a token refills (< 1 s)."""
RETRY_MAX_DELAY = 30.0
"""Backoff ceiling: half a minute, the scale of per-minute rate windows."""
RETRY_DEADLINE = 120.0
"""Total seconds one call may spend retrying; two rate windows, then the error surfaces."""
RETRY_MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` we sleep on; above it the error surfaces with ``retry_after`` set."""
RETRY_STATUSES = frozenset({429, 503})
"""Statuses the API documents as "try again": rate limited and overloaded."""

# Rate control (see _ratecontrol.py for how these fit together) ---------------------------
RATE_START_WINDOW = 10
"""Calls in flight before any answer: TCP's initial window; above the 8 jobs a fan-out runs."""
RATE_ROUND_SECONDS = 1.0
"""Shortest round the controller judges: the token buckets of rate limits refill per second."""
RATE_ROUND_ANSWERS = 10
"""Fewest answers a round judges: fewer cannot tell a 20 % background share from a limit."""
RATE_ROUND_MAX_SECONDS = 30.0
"""A round at a slow pace ends after this long even with fewer answers: slow plans learn too."""
RATE_IDLE_SECONDS = RATE_ROUND_MAX_SECONDS
"""A call that goes at once after this long in which the pace and any hold would have let
calls go, and none came, starts the round afresh: an idle stretch inside a round would read
as an account that accepts almost nothing (a client made, or left idle, for five minutes
and then refused was paced at a few calls a minute for a quarter of an hour). Time the pace
held calls back is not idle: counted as idle, four real processes sharing 600/min took 75 s
(median of 3) instead of 50-53 s, each slow process's every poll ending its test."""
RATE_MAX_CUT = 0.5
"""A cut keeps at least this share of the rate sent: one unlucky round does not starve a process."""
RATE_EXIT_FACTOR = 0.5
"""Leaving START halves the accepted rate: the burst that met the limit drained its bucket."""
RATE_CUT_HEADROOM = 0.95
"""A cut paces a little under the accepted rate, so the account's bucket refills between probes."""
RATE_PROBE_GAIN = 0.02
"""Growth per second of busy rounds without excess refusals, past the rate accepted at the last
cut: freed capacity is found within a minute, and probing refuses rarely (the grid: 5 %, per
round as it was, refused more in the single-process cells and let fast processes sharing an
account take the slow ones' share)."""
RATE_CATCH_UP_GAIN = 0.25
"""Growth per second of busy rounds while under the rate accepted at the last cut: back in a
few seconds."""
RATE_MEASURE_ROUNDS = 4
"""Rounds the accepted rate is measured over: whole cycles of refusal, hold and refill."""
RATE_MIN_REFUSALS = 3
"""Fewest rate refusals in a round that count as evidence of a limit; one or two may be luck."""
RATE_EXCESS_SIGMAS = 3.0
"""Refusals above the background by this many standard deviations are a limit, not luck."""
RATE_TRIAL_AFTER_CUTS = 3
"""Cuts in a row, refusals going on, before the client tests whether its pace is the cause."""
RATE_TEST_FACTOR = 0.7
"""A test paces at this share of what the account accepts: under a limit it caused, the bucket
refills at three tenths of the limit's rate and no refusal comes (so long as the accepted
rate it measured is under 1.4 times the limit). Deeper tests cost more than they tell: on the
grid (seeds 1-3), 0.7 against 0.5 raised one process's limit used at 120-2,400/min from a
median of 92.7-92.8 % (worst 80.4 %) to 93.0 % (worst 87.1 %); with 20 % random refusals its
worst cells from 36.7-54.6 % to 47.3-71.1 %; at 20/min from 56 % to 73 % (medians); four
processes' medians from 39-41 % to 53 %. The price: eight processes' median 429 share after
the first burst, 1.3-1.5 % -> 2.3-6.3 %. 0.8 gained a little more in one process and made
four real processes sharing 600/min take 1.6-1.9x as long (72-84 s against 44-46 s)."""
RATE_TEST_SECONDS = 10.0
"""A test lasts this long at the least: long enough for neighbours on the account to back off."""
RATE_TEST_ANSWERS = 30
"""Answers a test waits for before it confirms a limit (a quick test counts only answers to
calls sent after its first second, and ends sooner on a refusal of one): 30 show a 13 %
background share in 9 tests of 10 (15 in a second half, for a test that waits for
neighbours), 30 in all 98 in 100."""
RATE_CALM_ROUNDS = 3
"""Rounds in a row without a refusal that end a run of cuts: one may be luck."""
RATE_MAX_BACKGROUND = 0.25
"""A higher share of refusals is never taken for background: that is a limit or an outage."""
RATE_BACKGROUND_DECAY = 0.2
"""How fast the background share follows rounds that show less of it."""
RATE_FLOOR_REFUSALS = 8
"""Refusals (one per cut) the bound on the account's rate is taken over, every pair of them:
a few cycles, so an old limit is forgotten once a handful of cuts show a new one."""
RATE_FLOOR_CALLS = 4096
"""Accepted calls whose send times are kept for that bound: 100 s at 2,400/min. Older ones
only lower it, which is the safe side."""
RATE_FLOOR_MIN_SECONDS = 5.0
"""Shortest span between two refusals that bounds the rate. A refusal that came at random,
the bucket not empty, lets the bucket's credit pass for refill: at most a fifth of a
one-second bucket over 5 s, and the newest cycle must agree with older ones besides. Two
refusals closer than this mean the pace the last cut set was refused again: the limit
moved, and no bound is taken. (The grid moved less than a point from 3 to 10 s.)"""
RATE_FLOOR_AGREEMENT = 0.97
"""The most the newest cycle could show within this share of the best bound: the limit still
stands where it stood (one process alone, or shares at rest). A neighbour that arrives takes
a share, the newest cycle shows less, and the bound is set aside. 0.95 let eight processes
sharing an account freeze on unequal shares (their median limit used fell from 48 % to 36 %
on the grid)."""
RATE_FLOOR_MARGIN = 0.02
"""A cut paces this far above the bound: a limit met there drains a one-second bucket in
about 50 s whatever the rate, and the refusal that ends it measures the bound again."""
RATE_PLATEAU_GAIN = 0.002
"""Growth per second at the bound, instead of ``RATE_PROBE_GAIN``: the pace stays just over
the limit it measured (one process, 120-2,400/min on the grid, seeds 1-3: 93.0 % -> 96.3 %
of the limit used, worst 429 share after the first burst 2.6 % -> 1.8-2.1 %)."""
RATE_PLATEAU_CYCLES = 2.0
"""The slow growth lasts this many of the last cycles between refusals: if no refusal cuts
by then, the account has room again (a neighbour finished), and the usual probe finds it.
Without this end, processes sharing an account froze on unequal shares."""
RATE_MIN = 1.0 / 60.0
"""The slowest pace: one call a minute, so a client always probes again."""

# Shared account limiter over Redis (see _redis_limiter.py) ------------------------------
SHARED_KEY_PREFIX = "sarvam_async:rate"
"""Prefix of the limiter's Redis keys; the account part after it is a hash, never the key."""
SHARED_KEY_TTL = 86_400.0
"""Seconds an account's state (one small hash) outlives its last call: a day, so that
tomorrow's run starts at the rate today's learned instead of learning it again from refusals
(at 20 requests/min a short run cannot afford a single one), and an abandoned account's key
still goes away."""
SHARED_REDIS_TIMEOUT = 0.25
"""Longest wait for one Redis round trip (a healthy one takes well under a millisecond on a
LAN); past it Redis counts as down and the process paces itself, so a slow store costs at
most this much, once, per outage."""
SHARED_REDIS_DOWN_AFTER = 1.0
"""A call whose own deadline ends its wait for Redis before ``timeout`` does takes its
process off the shared budget only if it waited at least this long (or ``timeout``, if
shorter): a call short of time says nothing of a healthy store, but with a long ``timeout``
a frozen one must not fail every call whose deadline is shorter. A second is four default
timeouts, and more than any store an API client should wait on."""
SHARED_REJOIN_INTERVAL = 5.0
"""Seconds between attempts to reach Redis again while it is down: a restarted server is
re-joined within seconds, and a dead one costs one failed round trip per interval."""
SHARED_START_RATE = 2.0
"""Requests per second the account is paced at before anything is known (no plan given):
the bottom of Sarvam's plans' range times six, doubled each busy round until refused."""
SHARED_PLAN_HEADROOM = 0.98
"""A known plan is paced at this share of it: arrivals jitter by milliseconds, and a bucket of
one token refuses a call that comes a hair early; 2 % under is enough to never meet it."""
SHARED_ROUND_SECONDS = 1.0
"""Shortest round of the learned rate, which changes only at a round's end: the account's
token bucket refills per second, and a round must hold calls enough to count refusals."""
SHARED_ROUND_CALLS = 10
"""Calls a round with refusals needs before it ends (unless ``SHARED_ROUND_MAX_SECONDS`` have
passed): one refusal in ten is a share worth acting on; one in two is noise."""
SHARED_ROUND_MAX_SECONDS = 10.0
"""Longest round: at 20 requests/min ten calls take 30 s, too slow to learn a plan from."""
SHARED_LEARNED_HEADROOM = 0.97
"""A round with refusals sets the learned rate to this share of the rate the account accepted
in it (calls granted less refusals, per second), as BBR paces at the delivery rate: just under
what the bucket refills, so it refills and the next refusals come from a probe."""
SHARED_DEEPEST_CUT = 0.25
"""One round's cut never takes the rate below this share of it: a round of mostly stale
refusals (sent before the pace came down) cannot stop the account. The start's first cut has
no floor: doubling can overshoot a low plan many times over, and the rounds it is measured
over (the refused one and the calm one before it) say where the plan is."""
SHARED_BUSY_SHARE = 0.75
"""A round grows the learned rate only if calls waited for their slots and it granted this
share of what its pace allows: calls that arrive together wait on any pace, and slots reserved
before a doubling come due at the old pace, so a wait alone does not show the new pace was
tried. A start that doubled on waits alone reached 16x a 120/min plan before its first refusal
(measuring unused time between slots instead still doubled through that backlog)."""
SHARED_CATCH_UP_GAIN = 0.1
"""Growth per busy calm round back to the accepted rate last measured: a few rounds."""
SHARED_PROBE_GAIN = 0.01
"""Growth per busy calm round past it: finds freed capacity, slowly enough to refuse rarely."""
SHARED_MAX_RATE = 1000.0
"""Highest shared pace, in requests per second, a learned rate may reach: far above any plan,
it only keeps a rate from growing without bound on an unlimited account."""

# Storage (presigned URLs) ---------------------------------------------------------------
STORAGE_STALL_TIMEOUT = 300.0
"""Seconds without progress, in either direction, before a storage transfer is abandoned.
Five minutes outlasts any pause of a working storage service and frees a stuck transfer."""
STORAGE_TRANSFER_TIMEOUT: float | None = None
"""Optional limit on one whole storage transfer. None: a large file over a slow but moving
link takes as long as it takes; the stall timeout catches a dead one."""
MAX_TRANSCRIPT_BYTES = 256 * 1024 * 1024
"""Largest transcript downloaded, counted after decompression. Hours of audio with word
timestamps and diarization make tens of MB; 256 MiB stops a runaway or hostile body."""
STORAGE_CHUNK_SIZE = 256 * 1024
"""Bytes per read when streaming files: large enough for throughput, small for memory."""
STORAGE_CONCURRENCY = 8
"""Presigned transfers in flight per job; the client allows twice this across its jobs."""
STORAGE_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses Azure Blob and GCS document as transient: timeout, throttled, server errors."""
STORAGE_CONNECT_TIMEOUT = 30.0
"""Seconds to open a connection to storage; a healthy endpoint answers in well under one."""

# Local files ------------------------------------------------------------------------------
MAX_FILE_NAME_BYTES = 255
"""Longest file name, in UTF-8 bytes, an output (or its temporary twin) may have: the limit of
ext4, XFS, Btrfs and APFS. A longer name is refused before its input is uploaded, not after
its transcript is paid for."""
PART_TAG_LENGTH = 8
"""Random hex characters in a download's temporary name (``.<name>.<tag>.part``): enough that
two downloads of one output never share a file, short enough to leave the name room."""

# Jobs -----------------------------------------------------------------------------------
POLL_INTERVAL = 5.0
"""First pause between status polls; the official SDK's value and the docs' advice."""
MIN_CALL_TIME = 0.001
"""Retry deadline of a wait's status call when the time left of a wait is (nearly) none:
a policy's deadline must be positive."""
WAIT_LAST_LOOK = 1.0
"""A bounded wait's last status call goes this long before its timeout: time for an answer
over any real network (a call at the timeout itself would have none), and never past it."""
POLL_MAX_INTERVAL = 30.0
"""Polling backs off to this for long jobs, sparing the account's rate limit."""
MIN_POLL_INTERVAL = 0.01
"""Shortest first pause between status polls a caller may set. Zero never grew (0 x 1.5 is 0)
and polled in a busy loop, 6,600 calls a second; from 10 ms the 1.5x backoff passes one
second within a dozen polls. Only the emulator, whose jobs end in milliseconds, needs it low."""
MIN_POLL_MAX_INTERVAL = 1.0
"""Shortest pause polling may back off to: a long wait never polls more than once a second,
whatever it was told, which is already three times the slowest plan's whole rate."""
MAX_CONCURRENT_JOBS = 8
"""Jobs of a fan-out in flight: 8 jobs of 20 files keep uploads, waits and downloads
overlapping; the request rate is the adaptive limiter's business, not this bound's."""
JOB_RETRIES = 3
"""Extra goes a fan-out job gets after a transient failure outlived its call's retries."""
JOB_RETRY_PAUSE = 5.0
"""Seconds before a job's first extra go after its call's retries ran out, times the number
of goes (5, 10, 15 s): long enough for a 429 storm or a restart to pass. A call made once
(never re-sent, such as a dropped start) waits the retry policy's backoff instead."""

# Callbacks (webhooks) ----------------------------------------------------------------
CALLBACK_TOKEN_HEADER = "X-SARVAM-JOB-CALLBACK-TOKEN"
"""Header the API sends the callback's ``auth_token`` in (the cookbook's name)."""
CALLBACK_TOKEN_BYTES = 32
"""Random bytes of a generated callback token: 256 bits, beyond guessing or brute force."""
CALLBACK_SAFETY_POLL = 120.0
"""Seconds between status checks of a job waited on by callback, in case its callback is
lost. Two minutes bounds what a lost callback costs, and 8 jobs in flight spend 4 calls a
minute on it: a fifth of the smallest plan (20 a minute), against polling's whole budget."""
CALLBACK_RETRY_PAUSE = 5.0
"""Seconds before a failed confirming status call is made again (not a safety period)."""
CALLBACK_MAX_BODY = 64 * 1024
"""Largest callback body read. The payload is seven fields (a few hundred bytes); 64 KiB
leaves room for fields the API may add and refuses a flood before it is buffered."""
CALLBACK_REMEMBERED_JOBS = 10_000
"""Job ids a receiver remembers after their wait ended (to recognise late duplicates) and
unknown job ids it has logged: bounded, so a hostile sender cannot grow memory."""

DOWNLOAD_LAG_TIMEOUT = 10.0
"""Seconds download-files' "not in COMPLETED state" is waited out after a terminal status.

The live lag between the status and download-files endpoints lasts a few seconds; Sarvam's
own MCP server waits it out for 9 s (3 s, then 6 s). Ten seconds covers that with room, and
stays short enough that a job that really is not ready surfaces its error promptly.
"""
DOWNLOAD_LAG_FIRST_DELAY = 0.5
"""First pause before asking download-files again; most lags are over within a second or two."""
DOWNLOAD_LAG_MAX_DELAY = 4.0
"""Longest pause between asks: five or six asks fit in the default window, not one per second."""

CLI_CONNECT_CHECK_TIMEOUT = 5.0
"""Seconds the command waits for a TCP connection to the API before its first call. A
reachable host answers in well under a second; five tell a wrong ``--base-url`` or a dead
network within seconds instead of after the retry policy's minutes."""

CLI_PLAIN_PROGRESS_EVERY = 5.0
"""Longest silence of the command's plain-text progress (output not a terminal): a log or a
CI job shows a line at least this often, so a slow step never looks like a hang."""

VERSION = "0.1.0"
"""The package version: ``__version__``, the user agent and the built distribution read it."""
USER_AGENT = f"sarvam-async/{VERSION}"
"""Sent on every API call, so the service can tell this client's traffic apart."""

DEMO_MAX_FILES = 10_000
"""Most files ``sarvam-async demo --files`` generates: about 80 MB of WAV in a temporary
folder, minutes of a demo. A typo of more zeros must not fill the disk."""
