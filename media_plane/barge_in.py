"""Barge-in: which of the caller's speech over the agent cuts the agent off.

A caller who says "mhm", "okay" or "yeah" while the agent talks is listening, not taking
the turn; one who says "no, wait" is. Their voice alone cannot tell the two apart (both
are short, and the VAD reports the end of speech only after its stop time), their words
can. So while the agent speaks, the caller's turn starts on words rather than on voice
(Pipecat's minimum-words idea, with acknowledgements not counted):

- ``BargeInUserTurnStartStrategy`` starts the turn at once when the agent is silent, as
  the VAD strategy does; over the agent, on the first words that are not a backchannel
  (interim results, where the recogniser sends them, or the final one), or once the
  caller has spoken longer than any backchannel lasts.
- ``BackchannelFilter`` (after the STT) turns a transcript of acknowledgements alone,
  said over the agent, into Pipecat's ``UserBackchannelFrame``: the agent goes on, and
  the "okay" stays out of the conversation the model reads.

Words come late from a recogniser that has them only at the end of the utterance (the
offline one): about a second after the caller began. So the agent falls silent the
moment the caller starts over it (``AgentPauseFrame``: its audio is held, not dropped,
by the output transport) and, if what they said was a backchannel or nothing at all,
speaks on from where it stopped (``AgentResumeFrame``), as a person does; if not, the
turn starts and the held audio is dropped with the rest of the reply. The offline
recogniser is told which utterances began over the agent, and listens for what callers
say there (``recogniser.OVER_AGENT_PROMPT``).
"""

import asyncio
import re
from dataclasses import dataclass

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    InterimTranscriptionFrame,
    SystemFrame,
    TranscriptionFrame,
    UserBackchannelFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_start.base_user_turn_start_strategy import BaseUserTurnStartStrategy

from knowledge.text import words

# Words a listener says to say "go on". Not "yes", "no", "sure" or "stop": over a question
# they are answers, and an answer takes the turn.
BACKCHANNEL_WORDS = frozenset(
    {"mhm", "mm", "mmm", "hmm", "hm", "uh", "huh", "um", "ah", "aha", "oh", "okay", "ok",
     "yeah", "yep", "yup", "right", "alright", "cool"}
)  # fmt: skip
BACKCHANNEL_PHRASES = re.compile(r"\b(all right|i see|got it)\b")
# Backchannels last 0.2-0.9 s; a caller still speaking after that is taking the turn.
# Counted from the VAD's start (~0.1 s in) to its stop, which comes only after its stop
# time of silence (0.35 s): a 0.9 s "mm hmm" keeps it "speaking" for ~1.15 s. (At 0.9 s,
# the agent was cut off by a long hum before its words could show it was one.)
LONG_SPEECH_SECS = 1.3
# After the caller stops, how long their words may take to come (the offline recogniser
# decodes in ~0.2-0.3 s) before the agent, paused for them, speaks on.
WORDS_WAIT_SECS = 0.8


@dataclass
class AgentPauseFrame(SystemFrame):
    """The caller began speaking over the agent: hold its audio until their words decide."""


@dataclass
class AgentResumeFrame(SystemFrame):
    """It was a backchannel, or no words at all: the agent speaks on."""


@dataclass
class NoWordsFrame(SystemFrame):
    """The recogniser found no words in the caller's last utterance (noise, a cough): an
    agent paused for them need not wait any longer. Only a recogniser that decodes whole
    utterances (the offline one) knows this; for the others the wait runs out."""


@dataclass
class AgentSpeech:
    """Whether the agent is speaking, as the output transport reports it (its Bot*
    frames reach every processor before it, upstream)."""

    speaking: bool = False

    def update(self, frame: Frame) -> None:
        if isinstance(frame, BotStartedSpeakingFrame):
            self.speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self.speaking = False


def is_backchannel(text: str) -> bool:
    """Whether ``text`` is acknowledgements and nothing else ("Mm-hmm.", "Okay, okay.",
    "Yeah, I see."). Empty text is not: it is no words at all."""
    said = words(text)
    rest = words(BACKCHANNEL_PHRASES.sub(" ", " ".join(said)))
    return bool(said) and all(w in BACKCHANNEL_WORDS for w in rest)


class BargeInUserTurnStartStrategy(BaseUserTurnStartStrategy):
    """The caller's turn starts when they speak to a silent agent, and over the agent when
    their words are more than a backchannel or they go on speaking."""

    def __init__(
        self,
        *,
        long_speech_secs: float = LONG_SPEECH_SECS,
        words_wait_secs: float = WORDS_WAIT_SECS,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self._long_speech_secs = long_speech_secs
        self._words_wait_secs = words_wait_secs
        self._agent = AgentSpeech()
        self._waiting = False  # the caller began over the agent; their words will decide
        self._caller_speaking = False  # the VAD's view, between its start and stop
        self._timer: asyncio.Task | None = None  # long speech, or words that never came

    async def handle_user_turn_started(self) -> None:
        self._waiting = False
        await self._stop_timer()

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._stop_timer()

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        self._agent.update(frame)
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._caller_speaking = True
            if not self._agent.speaking:
                await self.trigger_user_turn_started()
                return ProcessFrameResult.STOP
            if not self._waiting:
                self._waiting = True
                await self.push_frame(AgentPauseFrame())
            await self._start_timer(self._long_speech())
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._caller_speaking = False
            if self._waiting:
                await self._start_timer(self._no_words())
        elif (
            isinstance(frame, (UserBackchannelFrame, NoWordsFrame))
            and self._waiting
            and not self._caller_speaking  # "no," came back empty, but "wait" is under way
        ):
            await self._stop_timer()
            await self._resume()
        elif (
            isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame))
            and (self._waiting or self._agent.speaking)
            and frame.text.strip()
        ):
            # Only words that are more than a backchannel get here over the agent
            # (``BackchannelFilter`` takes the rest out). Words that come after the
            # wait ran out (a recogniser slowed by a busy machine) still cut it off.
            await self.trigger_user_turn_started()
            return ProcessFrameResult.STOP
        return ProcessFrameResult.CONTINUE

    async def _resume(self) -> None:
        self._waiting = False
        await self.push_frame(AgentResumeFrame())

    async def _long_speech(self) -> None:
        await asyncio.sleep(self._long_speech_secs)
        self._timer = None
        if self._waiting:
            await self.trigger_user_turn_started()

    async def _no_words(self) -> None:
        await asyncio.sleep(self._words_wait_secs)
        self._timer = None
        if self._waiting:  # noise, or a cough: the agent goes on
            await self._resume()

    async def _start_timer(self, wait) -> None:
        await self._stop_timer()
        self._timer = self.task_manager.create_task(wait, "barge-in-wait")

    async def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            await self.task_manager.cancel_task(timer)


class BackchannelFilter(FrameProcessor):
    """After the STT: a backchannel said over the agent becomes a ``UserBackchannelFrame``
    (an interim one is dropped), so it neither starts the caller's turn nor joins it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._agent = AgentSpeech()
        self._over_agent = False  # the caller's speech under way began over the agent
        self._in_turn = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self._agent.update(frame)
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._over_agent = self._agent.speaking and not self._in_turn
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._in_turn = True
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._in_turn = self._over_agent = False
        elif (
            isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame))
            and self._over_agent
            and not self._in_turn
            and is_backchannel(frame.text)
        ):
            if isinstance(frame, TranscriptionFrame):
                self._over_agent = False
                await self.push_frame(
                    UserBackchannelFrame(frame.text, frame.user_id, frame.timestamp), direction
                )
            return
        await self.push_frame(frame, direction)
