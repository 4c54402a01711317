"""One account's rate budget shared by every process through Redis (the ``redis`` extra).

Each call's turn is one atomic round trip: a Lua script implementing GCRA (one "theoretical
arrival time" per account) reserves the next slot at the account's pace and answers how long
to wait for it. Only one call per process holds a reservation at a time (retries and calls on
jobs already begun ask first), so the processes take turns and a change of pace reaches every
one of them within a slot. The account's state
is one Redis hash, ``sarvam_async:rate:{<hash>}``, expiring ``key_ttl`` (a day) after its last
use, so that a later run starts at the rate an earlier one learned:

======== ===================================================================================
field    meaning
======== ===================================================================================
tat      when the next slot is free (Redis server time, so hosts' clocks never matter)
hold     no slot before this: a ``Retry-After`` one process was given holds all of them
rate     the learned pace, requests per second (unused when the plan is known)
ceil     the rate the account last accepted in a round with refusals
rs rn rx the current round: its start, calls granted in it, refusals reported in it
rw       1 when a call of this round waited for its slot
settle   1 for the round after a cut: its refusals are of calls sent before the cut
cn ct    calls accepted and seconds since the last cut, over rounds in which calls waited
======== ===================================================================================

The pace is the known plan (``rate_limit=``, paced ``SHARED_PLAN_HEADROOM`` under it), else
learned for the whole account, one round at a time: a second, or while it has refusals, until
it holds ten calls (or ten seconds), so that their share is worth acting on. The start's
first refused round ends at its second: the doubling drew those refusals, and more calls at
that pace would only draw more:

=========================== ============================================================
round ends with             the learned rate
=========================== ============================================================
refusals (not settling)     the accepted rate (granted less refused, per second) of
                            the rounds since the last cut in which calls waited,
                            holds included, times
                            ``SHARED_LEARNED_HEADROOM``; after the start's first cut,
                            never below a quarter of itself. The start's first cut
                            counts this round and the last calm one before it in
                            which calls waited (the bucket's credit let that one
                            double past the limit), and never lands above half the
                            refused round's pace, the pace before the doubling: the
                            credit can make both read more than the limit. A later
                            cut's ``ceil`` is never above the pace it cuts
no refusal, busy            doubles until the first refusal; then +10 % a round back to
                            ``ceil``, +1 % a round past it. Busy: calls waited for their
                            slots, and the round granted ``SHARED_BUSY_SHARE`` of what
                            its pace allows (the pace was tried, not only reserved)
no refusal, not busy        unchanged: a round that left the pace unused says nothing
                            about the limit
over twice the longest      idle, whatever it holds: a quiet spell (or yesterday's run)
round                       says nothing about the limit either
=========================== ============================================================

If Redis fails or takes longer than ``timeout``, the process leaves: one WARNING, the
client's own controller paces it (at the plan, when one is given), and every
``rejoin_interval`` one call tries Redis again. A call never waits on Redis past its own
deadline, and nothing the store does raises: a call whose deadline runs out while it waits
for Redis is over its deadline (``Overdue``), and takes its process off the shared budget
only if it waited ``timeout`` or ``SHARED_REDIS_DOWN_AFTER``, whichever is shorter, so a
call short of time never does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any

from . import _constants as C
from . import _options
from ._limiter import Overdue, check_plan
from ._ratecontrol import Signal
from ._tasks import close_at_loop_end, within
from .errors import ConfigurationError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisRateLimiter", "account_key"]

logger = logging.getLogger("sarvam_async")

_FOREVER = 1e9  # seconds: "no deadline" as a number Lua reads

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function num(x) return string.format('%.17g', x) end
"""

_TURN = (
    _NOW
    + """
local plan, max_wait, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'hold', 'ceil', 'rs', 'rn', 'rx', 'rw',
                     'settle', 'cn', 'ct')
local hold = tonumber(s[3]) or 0
local rate = plan
if plan <= 0 then rate = tonumber(s[2]) or tonumber(ARGV[4]) end
local at = math.max(tonumber(s[1]) or now, now, hold)
local wait = at - now
if wait > max_wait then
  return {0, num(wait), num(rate), num(math.max(0, hold - now))}
end
if plan <= 0 then
  local rs, rn, rx = tonumber(s[5]) or now, tonumber(s[6]) or 0, tonumber(s[7]) or 0
  local waited, settle, ceil = tonumber(s[8]) or 0, tonumber(s[9]) or 0, tonumber(s[4])
  local cn, ct = tonumber(s[10]) or 0, tonumber(s[11]) or 0
  local dur = now - rs
  if dur > 2 * tonumber(ARGV[7]) then
    -- the account went quiet (a pause between batches, or yesterday's run): that round
    -- says nothing of the limit, and the rate learned before it stands
    waited, rx, settle = 0, 0, 0
  end
  -- (the start's refused round, before any ceiling, ends at its first second)
  if dur >= tonumber(ARGV[5]) and (rx == 0 or not ceil or rn >= tonumber(ARGV[6])
                                  or dur >= tonumber(ARGV[7])) then
    -- accepted calls and seconds of the rounds since the last cut in which calls waited,
    -- this one included:
    -- whole cycles of probe, refusal and hold, so neither a hold nor a burst skews them
    if waited == 1 or rx > 0 then cn, ct = cn + rn - rx, ct + dur end
    if not ceil and rx == 0 then
      -- the start: only its last calm round with waits joins the round with the first refusals
      -- (the bucket's credit and the hold are then spread over two rounds, not one)
      if waited == 1 then cn, ct = rn, dur else cn, ct = 0, 0 end
    end
    if rx > 0 and settle == 0 and ct > 0 then
      -- the start's overshoot can be many times the limit: its first cut is not bounded
      -- below, but never lands above half the refused pace, the one before its doubling
      -- (the bucket's credit can make the rounds read more than the limit)
      local floor, top = 0, rate / 2
      if ceil then floor, top = rate * tonumber(ARGV[8]), rate end
      ceil = math.min(math.max(cn, 0) / ct, top)
      rate = math.max(floor, tonumber(ARGV[13]), math.min(rate, ceil * tonumber(ARGV[9])))
      settle, cn, ct = 1, 0, 0
    else
      -- busy: calls waited for their slots, and the round's grants came at this pace (two
      -- calls arriving together also wait, on a pace demand is far below; and slots
      -- reserved at the pace before a doubling come due at that pace: it is not tried yet)
      if rx == 0 and waited == 1 and rn >= tonumber(ARGV[14]) * rate * dur then
        if not ceil then
          rate = rate * 2
        elseif rate < ceil then
          rate = math.min(ceil, rate * (1 + tonumber(ARGV[10])))
        else
          rate = rate * (1 + tonumber(ARGV[11]))
        end
        rate = math.min(rate, tonumber(ARGV[12]))
      end
      settle = 0
    end
    if ceil then redis.call('HSET', KEYS[1], 'ceil', num(ceil)) end
    redis.call('HSET', KEYS[1], 'cn', cn, 'ct', num(ct))
    rs, rn, rx, waited = now, 0, 0, 0
  end
  if wait > 0 then waited = 1 end
  redis.call('HSET', KEYS[1], 'rate', num(rate), 'rs', num(rs), 'rn', rn + 1, 'rx', rx,
             'rw', waited, 'settle', settle)
end
redis.call('HSET', KEYS[1], 'tat', num(at + 1 / rate))
redis.call('PEXPIRE', KEYS[1], math.ceil((ttl + wait) * 1000))
return {1, num(wait), num(rate), num(math.max(0, hold - now))}
"""
)
"""ARGV: plan/s (0: learn), max wait s, ttl s, start rate, round s, round calls, longest
round s, deepest cut, headroom, catch-up, probe, max rate, min rate, busy share.
Returns {granted, wait s, rate/s, hold left s}."""

_REFUSED = (
    _NOW
    + """
local learn, retry_after, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'hold', 'tat')
local hold = tonumber(s[1]) or 0
if retry_after > 0 and now + retry_after > hold then
  hold = now + retry_after
  redis.call('HSET', KEYS[1], 'hold', num(hold))
end
if learn == 1 then redis.call('HINCRBY', KEYS[1], 'rx', tonumber(ARGV[4])) end
local tat = tonumber(s[2]) or now
redis.call('PEXPIRE', KEYS[1], math.ceil((ttl + math.max(0, hold - now, tat - now)) * 1000))
return 1
"""
)
"""ARGV: learn (1/0), Retry-After s (0: none), ttl s, refusals counted."""


_SHA = {src: hashlib.sha1(src.encode()).hexdigest() for src in (_TURN, _REFUSED)}


class _Turns:
    """One holder at a time; waiters with ``ahead`` go first, each kind in arrival order."""

    __slots__ = ("_ahead", "_busy", "_rest")

    def __init__(self) -> None:
        self._busy = False
        self._ahead: collections.deque[asyncio.Future[None]] = collections.deque()
        self._rest: collections.deque[asyncio.Future[None]] = collections.deque()

    async def enter(self, timeout: float, ahead: bool) -> None:
        """Wait for the turn; raises asyncio.TimeoutError after ``timeout`` seconds."""
        if not self._busy:
            self._busy = True
            return
        if timeout <= 0:
            raise asyncio.TimeoutError
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._ahead if ahead else self._rest
        queue.append(future)
        try:
            # not asyncio.wait_for: before Python 3.12 it returns a turn handed over just as
            # its caller is cancelled, and the cancellation is lost
            await within(future, timeout)
        except BaseException:
            if future.done() and not future.cancelled():
                self.leave()  # handed the turn as it gave up: pass it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(future)
            raise

    def leave(self) -> None:
        """Hand the turn to the next waiter, or free it."""
        for queue in (self._ahead, self._rest):
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)
                    return
        self._busy = False


def _check_redis_url(url: str) -> None:
    """Refuse a Redis URL redis-py could not use, where it is given, not at the first call;
    the message never shows the URL (it may hold a password)."""
    from redis.asyncio.connection import parse_url

    try:
        parse_url(url)
    except ValueError as exc:
        reason = str(exc).split(":", 1)[0] if "://" not in str(exc) else "it does not parse"
        raise ConfigurationError(
            f"redis must be a URL such as redis://host:6379/0 ({reason})"
        ) from None


def account_key(account: str) -> str:
    """The Redis key of an account's state: a hash of its name (or API key), never the name."""
    digest = hashlib.sha256(b"sarvam_async rate account\0" + account.encode()).hexdigest()
    return f"{C.SHARED_KEY_PREFIX}:{{{digest[:32]}}}"


class RedisRateLimiter:
    """An account-wide rate budget in Redis, for ``AsyncSarvam(rate_limiter=...)``.

    ``redis`` is a ``redis.asyncio.Redis`` (yours to close) or a URL such as
    ``"redis://host:6379/0"`` (closed by ``aclose()`` / ``async with``). Every process whose
    clients use the same Redis and account draw from one budget. ``account`` names it; left
    out, it is the client's API key, hashed (keys of one account then need ``account=``).
    ``rate_limit`` is the account's plan in requests per minute; left out, one rate is
    learned for the whole account from its refusals. ``key_ttl`` is how long the account's
    state outlives its last call; ``timeout`` the longest wait for Redis before this
    process leaves it and paces itself, ``rejoin_interval`` how often it tries again.

    Raises ConfigurationError when the ``redis`` extra is missing or an option is invalid.
    """

    def __init__(
        self,
        redis: Redis | str,
        *,
        account: str | None = None,
        rate_limit: float | None = None,
        key_ttl: float = C.SHARED_KEY_TTL,
        timeout: float = C.SHARED_REDIS_TIMEOUT,
        rejoin_interval: float = C.SHARED_REJOIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            from redis.asyncio import Redis as _Redis
        except ImportError:
            raise ConfigurationError(
                "RedisRateLimiter needs the redis client: pip install 'sarvam-async[redis]'"
            ) from None
        rate_limit = check_plan(rate_limit, "rate_limit")
        key_ttl = _options.seconds(key_ttl, "key_ttl", finite=True)
        timeout = _options.seconds(timeout, "timeout", finite=True)
        rejoin_interval = _options.seconds(
            rejoin_interval, "rejoin_interval", zero=True, finite=True
        )
        if not callable(clock):
            raise ConfigurationError("clock must be callable")
        if account is not None and (not isinstance(account, str) or not account):
            raise ConfigurationError("account must be a non-empty name (or None: the API key)")
        if isinstance(redis, str):
            _check_redis_url(redis)
        elif not isinstance(redis, _Redis):
            raise ConfigurationError(
                "redis must be a redis:// URL or a redis.asyncio.Redis client, got "
                f"{type(redis).__name__}"
            )
        self._url = redis if isinstance(redis, str) else None
        self._redis: Redis | None = None if isinstance(redis, str) else redis
        self._redis_class = _Redis
        self._loop: asyncio.AbstractEventLoop | None = None
        self._turns = _Turns()
        self._key = None if account is None else account_key(account)
        self._named = account is not None
        self._rate_limit = rate_limit
        self._plan = 0.0 if rate_limit is None else rate_limit / 60.0 * C.SHARED_PLAN_HEADROOM
        self._ttl = key_ttl
        self._timeout = timeout
        self._rejoin = rejoin_interval
        self._clock = clock
        self._down = False
        self._retry_at = -math.inf
        self._hold_until = -math.inf
        self._rate: float | None = self._plan or None
        self._reporting: asyncio.Task[None] | None = None
        self._keeper: AsyncGenerator[None, None] | None = None
        self._refused = 0  # refusals heard and not yet sent to Redis
        self._refused_hint = 0.0

    def __repr__(self) -> str:
        state = "left (pacing locally)" if self._down else "joined"
        return f"RedisRateLimiter(key={self._key!r}, {state})"

    # --------------------------------------------------------------- the gate's seam

    def attach(self, api_key: str) -> None:
        """Called by the client with its API key: names the account by the key's hash.

        Raises ConfigurationError when one limiter without ``account=`` serves two keys.
        """
        if self._named:
            return
        key = account_key(api_key)
        if self._key is not None and self._key != key:
            raise ConfigurationError(
                "this RedisRateLimiter already serves another API key; pass account= to "
                "share one budget between keys of the same account"
            )
        self._key = key

    @property
    def joined(self) -> bool:
        """True while the shared budget paces calls, or when it is time to try Redis again."""
        return not self._down or self._clock() >= self._retry_at

    @property
    def pace_per_minute(self) -> float | None:
        """The account's shared pace as last seen, requests per minute."""
        return None if self._rate is None else self._rate * 60.0

    @property
    def rate_limit(self) -> float | None:
        """The plan given (requests per minute): the client's own pace while Redis is down."""
        return self._rate_limit

    @property
    def hold_seconds(self) -> float:
        """How long a shared ``Retry-After`` still holds this process's calls."""
        return max(0.0, self._hold_until - self._clock())

    async def turn(self, timeout: float, ahead: bool = False) -> None:
        """Wait for this call's slot in the account's budget (see the module docstring).

        One call of this process asks at a time, those with ``ahead`` (work already begun)
        first. Raises Overdue when the slot would come after ``timeout`` seconds, or Redis
        has not answered by then; otherwise never raises for Redis: on a failure the
        process leaves and the call goes.
        """
        started = self._clock()
        turns = self._bind()
        try:
            await turns.enter(timeout, ahead)
        except asyncio.TimeoutError:
            raise Overdue(self._clock() - started) from None
        try:
            if self._down and self._clock() < self._retry_at:
                return  # another call found Redis down while this one queued
            hold = self._hold_until - self._clock()
            if hold > 0:  # this process's own refusal, before Redis has it
                if hold > timeout - (self._clock() - started):
                    raise Overdue(self._clock() - started)
                await asyncio.sleep(hold)
            left = timeout - (self._clock() - started)
            if left <= 0:
                raise Overdue(self._clock() - started)
            reply = await self._ask(left)
            if reply is None:
                return
            granted, wait, rate, hold_left = (float(x) for x in reply)
            self._rate = rate
            if hold_left > 0:
                self._hold_until = max(self._hold_until, self._clock() + hold_left)
            if not granted:
                raise Overdue(self._clock() - started)
            if wait > 0:
                # the slot is counted from Redis's clock during the round trip: one that
                # comes due past the deadline once the answer is here is given up
                if wait > timeout - (self._clock() - started):
                    raise Overdue(self._clock() - started)
                await asyncio.sleep(wait)
        finally:
            turns.leave()

    def on_answer(self, signal: Signal, retry_after: float | None) -> None:
        """Hear one answer: a rate refusal holds this process now and every process soon."""
        if signal is not Signal.RATE_LIMITED:
            return
        hint = retry_after if retry_after is not None and retry_after > 0 else 0.0
        hint = min(hint, C.RETRY_MAX_RETRY_AFTER)
        if hint:
            self._hold_until = max(self._hold_until, self._clock() + hint)
        if self._down:
            return
        self._refused += 1  # every refusal counts: the learned rate is cut by their share
        self._refused_hint = max(self._refused_hint, hint)
        if self._reporting is not None and not self._reporting.done():
            return  # the running report sends this one too
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._reporting = loop.create_task(self._report())

    # --------------------------------------------------------------- Redis

    def _bind(self) -> _Turns:
        """The running loop's turn queue and connection (a URL's client is rebuilt per loop)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._turns = _Turns()
            if self._url is not None:
                redis = self._redis = self._redis_class.from_url(
                    self._url, socket_timeout=self._timeout, socket_connect_timeout=self._timeout
                )
                # closed when its loop ends (asyncio.run), if aclose() never comes: a limiter
                # used under several asyncio.run calls leaves no connection behind
                self._keeper = close_at_loop_end(redis.aclose)
        return self._turns

    async def _ask(self, left: float) -> list[Any] | None:
        """One round trip of the turn script; None when Redis failed (the process left)."""
        budget = min(self._timeout, left)
        try:
            reply = await within(
                self._script(
                    _TURN,
                    self._plan,
                    min(left, _FOREVER),
                    self._ttl,
                    C.SHARED_START_RATE,
                    C.SHARED_ROUND_SECONDS,
                    C.SHARED_ROUND_CALLS,
                    C.SHARED_ROUND_MAX_SECONDS,
                    C.SHARED_DEEPEST_CUT,
                    C.SHARED_LEARNED_HEADROOM,
                    C.SHARED_CATCH_UP_GAIN,
                    C.SHARED_PROBE_GAIN,
                    C.SHARED_MAX_RATE,
                    C.RATE_MIN,
                    C.SHARED_BUSY_SHARE,
                ),
                budget,
            )
        except asyncio.TimeoutError as exc:
            if budget >= min(self._timeout, C.SHARED_REDIS_DOWN_AFTER):
                self._leave(exc)  # no healthy Redis takes this long: pace locally for now
            if budget < self._timeout:  # the call's own deadline came first: it is over
                raise Overdue(left) from None
            return None
        except Exception as exc:  # any failure of the store: never the caller's problem
            self._leave(exc)
            return None
        if self._down:
            self._down = False
            logger.info("shared rate limiter: Redis answers again; pacing from the shared budget")
        return list(reply)

    async def _report(self) -> None:
        """Send the refusals heard so far, one round trip per batch, until none are left."""
        while self._refused:
            count, hint = self._refused, self._refused_hint
            self._refused, self._refused_hint = 0, 0.0
            try:
                await within(
                    self._script(_REFUSED, 0 if self._plan else 1, hint, self._ttl, count),
                    self._timeout,
                )
            except Exception as exc:
                self._leave(exc)
                return

    async def _script(self, source: str, *args: float) -> Any:
        """Run a script by its hash (one round trip), sending its text once per server."""
        from redis.exceptions import NoScriptError

        redis = self._redis
        key = self._key
        if redis is None or key is None:
            raise ConfigurationError("the limiter is not attached to a client")
        try:
            return await redis.evalsha(_SHA[source], 1, key, *args)
        except NoScriptError:
            return await redis.eval(source, 1, key, *args)

    def _leave(self, exc: BaseException) -> None:
        self._retry_at = self._clock() + self._rejoin
        if not self._down:
            self._down = True
            # the class only: a message may carry the server's address or password
            logger.warning(
                "shared rate limiter: Redis failed (%s); this process paces itself until it "
                "answers again (tried every %gs)",
                type(exc).__name__,
                self._rejoin,
            )

    async def aclose(self) -> None:
        """Close the Redis client made from a URL (one passed in is left to its owner)."""
        task, self._reporting = self._reporting, None
        if task is not None and not task.done():
            task.cancel()
        if self._url is not None and self._redis is not None:
            redis, self._redis = self._redis, None
            self._loop = None
            await redis.aclose()

    async def __aenter__(self) -> RedisRateLimiter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
