"""The firmware: capture, ring buffer, triggers, recorder and indicators on one loop.

Everything is handed a :class:`hal.board.Hal`; nothing here reads time or
touches hardware directly, which is what lets the same object run on a Pi,
paced to the wall clock, or on the virtual clock in a test.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Any

from camera import __version__
from camera.audio_path import AudioPath
from camera.capture import Capture
from camera.clock_discipline import ClockDiscipline
from camera.config import Config, audio_arena_bytes, ring_retention
from camera.encoders import encoder_for
from camera.encoders.signing import SigningEncoder
from camera.evidence.audit import AuditLog, DeviceAudit
from camera.evidence.custody import Custody, config_sha256, manifest_sha256
from camera.evidence.keys import DeviceKey, export_public_key, test_key
from camera.evidence.records import StopReason, Timing, r6
from camera.evidence.svf import ProductInfo, StreamSigner
from camera.gestures import Gesture
from camera.indicators import Indicators
from camera.overlay import Overlay
from camera.position import PositionLog
from camera.recorder import Recorder, VideoFormat
from camera.recovery import recover_storage
from camera.ring import RingBuffer
from camera.segments import Sealer
from camera.state import State, check
from camera.triggers import Triggers
from hal.board import Hal
from hal.gps import Fix

log = logging.getLogger(__name__)

START_GESTURES = {("holster", "activate"), ("button", "double_press")}


#: Written into every signed GOP (SVF product info) with the firmware version
#: and the device id as serial number.
MANUFACTURER = "bodycam open firmware"


class Firmware:
    def __init__(self, config: Config, hal: Hal, key: DeviceKey | None = None) -> None:
        """``key`` signs everything the device writes (SPEC 12).

        None only on the virtual clock: a test key derived from the device id
        (seed 0). On real time there is no default, since a camera whose key
        anyone can recompute proves nothing.
        """
        self.config = config
        self.hal = hal
        self.clock = hal.clock
        if key is None:
            if not self.clock.virtual:
                raise ValueError("a device key is required on the real clock")
            key = test_key(config.device.id, 0)
        self.key = key
        self.config_sha256 = config_sha256(config)
        product = ProductInfo(
            hardware_id="bodycam",
            firmware_version=__version__,
            serial_number=config.device.id,
            manufacturer=MANUFACTURER,
        )
        self.audit = DeviceAudit(AuditLog(hal.storage, key), self.clock.wall, hal.worker)
        self.custody = Custody(key, config.device.id, __version__, self.config_sha256)
        v, b = config.video, config.buffer
        self.state = State.BOOTING
        self.events: deque[dict[str, Any]] = deque(maxlen=10_000)
        #: Called on the loop thread with every event-log entry (console, bench).
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.recordings: list[dict[str, Any]] = []
        #: Device time the recording in progress was started at (its start gesture
        #: recognised, or the console command run): a hold only stops it if its
        #: press began at or after this (SPEC 5).
        self.recording_since = -math.inf
        #: (device time, source) of the latest trigger, started, marked or
        #: refused alike; the console's STATUS shows it.
        self.last_trigger: tuple[float, str] | None = None
        #: Device time boot() began at: the console's uptime counts from it.
        self.booted_at: float | None = None
        # The ring keeps the recognition delay beyond pre_event, so the keyframe at
        # or before ``T - pre_event`` is still held when the gesture is recognised.
        retain = ring_retention(config)  # the same figure the config's arena check uses
        audio_bytes = audio_arena_bytes(config)  # sound's share of the arena (0 without)
        self.ring = RingBuffer(
            capacity_bytes=int(b.capacity_mb * 1_000_000) - audio_bytes,
            retain_seconds=retain,
            max_frames=math.ceil((retain + 2 * v.gop / v.fps) * v.fps) + 16,
        )
        encoder_name = v.encoder
        if encoder_name == "auto" and self.clock.virtual:
            encoder_name = "libx264"  # reproducible bytes: never a host-dependent encoder
        encoder = encoder_for(v, encoder_name)
        # H.264 is signed in the stream as it leaves the encoder, before the
        # ring, so the pre-event is signed too; MJPEG frames get per-frame
        # hashes in the signed manifest instead.
        sealer = None
        if v.codec == "h264":
            signer = StreamSigner(key.private_key, product)
            encoder = SigningEncoder(encoder, signer, self._wall_us)
            sealer = Sealer(key, product)
        self.encoder = encoder
        overlay = Overlay(config.device.id, (v.width, v.height)) if v.overlay else None
        self.capture = Capture(
            self.clock,
            hal.sensor,
            self.encoder,
            self.ring,
            overlay,
            offload=not self.clock.virtual,
        )
        # Sound (SPEC 15): its own ring beside the video's, in the same arena budget.
        self.audio = AudioPath(config, hal, audio_bytes) if config.audio.enabled else None
        # Time and place (SPEC 14): every fix sets the wall clock first, then the
        # position log, whose recent points reach back as far as the video ring.
        self.clock_discipline = ClockDiscipline(self.clock, config.gps)
        self.capture.discipline = self.clock_discipline  # marks an undisciplined overlay time
        self.positions = PositionLog(self.clock, retain)
        self.recorder = Recorder(
            self.clock,
            hal.storage,
            hal.worker,
            self.ring,
            VideoFormat(
                v.codec,
                v.width,
                v.height,
                v.fps,
                encoder=encoder.name,
                # The virtual clock's frames are exactly n / fps apart (SPEC 4); a
                # real clock's carry the sensor's capture times, jitter and all.
                timing=Timing.EXACT if self.clock.virtual else Timing.SENSOR,
            ),
            device_id=config.device.id,
            pre_event=b.pre_event,
            segment_seconds=config.recording.segment_seconds,
            queue_bytes=int(b.queue_mb * 1_000_000),
            reserve_bytes=int(config.recording.reserve_mb * 1_000_000),
            on_finished=self._finished,
            on_durable=lambda rec: self._log("durable", recording=rec.id),
            custody=self.custody,
            sealer=sealer,
            audit=self.audit,
            audio=None if self.audio is None else self.audio.format,
            audio_ring=None if self.audio is None else self.audio.ring,
            audio_pre_event=config.audio.pre_event,
            audio_source=None if self.audio is None else self.audio.source_name,
            positions=self.positions,
        )
        self.positions.listeners.append(self.recorder.on_track)
        self.capture.listeners.append(self.recorder.on_frame)
        if self.audio is not None:
            self.audio.listeners.append(self.recorder.on_audio)
        self.capture.skip_listeners.append(self.recorder.on_skipped)
        hal.worker.on_error = self._writer_error
        o = config.outputs
        self.indicators = Indicators(
            self.clock,
            hal.gpio,
            {"record_led": o.record_led, "status_led": o.status_led, "haptic": o.haptic},
        )
        g = config.gestures
        self.triggers = Triggers(
            self.clock,
            hal.gpio,
            config.inputs,
            self._gesture,
            double_press_window=g.double_press_window,
            hold_seconds=g.hold_seconds,
        )

    # -- life cycle ----------------------------------------------------------
    def boot(self) -> None:
        self.booted_at = self.clock.now()
        # Held until shutdown (or until the process dies): a second firmware or
        # ``bodycam recover`` on this card is refused instead of corrupting it.
        self.hal.storage.lock()
        self._boot_records()
        self.triggers.start()
        log.info(
            "encoder %s (%s, video.encoder = %s)",
            self.encoder.name,
            self.config.video.codec,
            self.config.video.encoder,
        )
        self.capture.start()
        if self.audio is not None:
            if self.audio.problem is not None:
                self._no_microphone(self.audio.problem)
            self.audio.start()
        self._start_gps()
        self._set_state(State.BUFFERING)
        for name, detector in self.triggers.detectors.items():
            # A level already active at boot is no edge: logged, never a trigger
            # (a camera booted next to an empty holster must not start recording).
            self._log("input", input=name, active=detector.active)

    def _boot_records(self) -> list[dict[str, Any]]:
        """What every boot writes before capture: the public key, its audit entries, and
        the recovery of recordings a power cut interrupted (signed, chained, logged)."""
        recovered = []
        now, storage, key = self.clock.now(), self.hal.storage, self.key
        # A simulation's test key replaces an older one (kept, renamed); a real
        # key never silently replaces another: the card was signed by it.
        export_public_key(storage, self.config.device.id, key, replace=key.test)
        self.audit.record(
            "boot",
            now,
            device_id=self.config.device.id,
            firmware_version=__version__,
            key_id=key.key_id,
            test_key=key.test,
            board=self.hal.board.name,
            encoder=self.encoder.name,
        )
        self.audit.record("config_loaded", now, config_sha256=self.config_sha256)
        for manifest in recover_storage(storage, self.custody):
            recovered.append(manifest)
            rec_id = manifest["recording_id"]
            self._log("recovered", recording=rec_id, frames=manifest["frames"])
            self.audit.record(
                "recovery",
                now,
                recording_id=rec_id,
                frames=manifest["frames"],
                manifest_sha256=manifest_sha256(storage, rec_id),
            )
        return recovered

    def recover_after_power_cut(self) -> list[dict[str, Any]]:
        """A simulated power cut's next boot, up to recovery: what the card holds then.

        The cut took the audit log's unsynced tail, so it is read afresh; the
        recovered manifests are signed, chained and logged as at a real boot.
        """
        self.audit.close()
        self.audit = DeviceAudit(
            AuditLog(self.hal.storage, self.key), self.clock.wall, self.hal.worker
        )
        recovered = self._boot_records()
        self.audit.checkpoint(self.clock.now(), "recovery")
        self.audit.close()
        return recovered

    def run(self, until: float) -> None:
        self.clock.run(until=until)

    def _start_gps(self) -> None:
        """Fixes from the receiver, if there is one; its silence recorded if one was asked for.

        A receiver that did not open is never fatal (a recording without a
        position is still evidence): said once, audited, and the track then
        records every second as lost (``no_data``), which is what happened.
        """
        gps = self.hal.gps
        if gps is None and not self.config.gps.enabled:
            return
        self.positions.start()
        if gps is None:
            why = self.hal.gps_problem or "not opened"
            self._log("error", what="gps", detail=why)
            self.audit.record("error", self.clock.now(), what="gps", detail=why)
            return
        gps.start(self._on_fix)

    def _on_fix(self, fix: Fix) -> None:
        """One epoch from the receiver, on the loop: the wall clock first, then the position."""
        if self.state is State.STOPPED:
            return
        self.clock_discipline.on_fix(fix)
        self.positions.on_fix(fix)

    def _no_microphone(self, why: str) -> None:
        """Sound was asked for and there is no microphone: said once, at boot, and audited."""
        self._log("error", what="microphone", detail=why)
        self.audit.record("error", self.clock.now(), what="microphone", detail=why)

    def shutdown(self, reason: StopReason = StopReason.END_OF_RUN) -> None:
        """Stop capture, close any recording with ``reason``, wait for the writer."""
        self.capture.stop()
        if self.audio is not None:
            self.audio.stop()
        if self.hal.gps is not None:
            self.hal.gps.close()
        self.positions.close()
        if self.recorder.active:
            self.stop_recording(reason, self.clock.now())
        self.hal.worker.drain()
        self.clock.run_posted()
        self.triggers.close()
        self.indicators.close()
        now = self.clock.now()
        self.audit.record("shutdown", now, reason=str(reason))
        self.audit.checkpoint(now, "shutdown")
        self.audit.close()
        self._set_state(State.STOPPED)
        self.hal.storage.unlock()

    def _wall_us(self, t: float) -> int:
        """Unix microseconds of device time ``t``: the GOP timestamps in the stream."""
        return round(self.clock.wall(t).timestamp() * 1_000_000)

    # -- events --------------------------------------------------------------
    def _log(self, kind: str, **fields: Any) -> None:
        entry = {"time": r6(self.clock.now()), "kind": kind, **fields}
        self.events.append(entry)
        for listener in self.listeners:
            listener(entry)
        log.info("%s %s", kind, fields)

    def _set_state(self, new: State) -> None:
        check(self.state, new)
        self._log("state", old=self.state.value, new=new.value)
        self.state = new
        self.indicators.recording(new is State.RECORDING)

    def _gesture(self, g: Gesture) -> None:
        self._log("gesture", input=g.input, gesture=g.kind, at=r6(g.time))
        role = self.triggers.roles.get(g.input, g.input)
        if (role, g.kind) in START_GESTURES:
            self.trigger(g.input, g.time)
        elif role == "button" and g.kind == "hold":
            if g.time < self.recording_since:
                # Pressed before the recording began (held while the holster was
                # drawn, or the press that started it): never a stop (SPEC 5).
                self._log("hold_ignored", input=g.input, at=r6(g.time))
                return
            self.stop_recording(StopReason.BUTTON_HOLD, g.recognised_at)

    def trigger(self, source: str, t: float, detail: str | None = None) -> None:
        """A start gesture: start recording, or mark the one in progress.

        ``detail`` qualifies ``source`` in the manifest (a console trigger says
        what it stands for) without pretending to be that source.
        """
        self.last_trigger = (t, source)
        extra = {} if detail is None else {"detail": detail}
        if self.recorder.active:
            self.recorder.mark(source, t, detail)
            self._log("marker", source=source, **extra, at=r6(t))
            return
        if self.recorder.storage_full():
            self._refuse(source, t)
            return
        # Indicators first: copying the pre-event out of the ring takes a few
        # milliseconds the officer should not wait for to see the red LED.
        self._set_state(State.RECORDING)
        self.indicators.pulse(1)
        rec = self.recorder.start(source, t, detail)
        if rec is None:  # the card filled in between, or the writer backlog is full
            self._set_state(State.BUFFERING)
            self._refuse(source, t, self.recorder.refusal or "storage full")
            return
        self.recording_since = self.clock.now()
        self._log("start", source=source, **extra, at=r6(t), recording=rec.id)

    def _refuse(self, source: str, t: float, reason: str = "storage full") -> None:
        self._log("refused", source=source, at=r6(t), reason=reason)
        self.audit.later(
            "storage_full" if reason == "storage full" else "trigger_refused",
            t,
            source=source,
            reason=reason,
        )
        self.indicators.error(True)

    def stop_recording(self, reason: StopReason | str, t: float) -> None:
        if not self.recorder.active:
            return
        reason = StopReason(reason)  # a caller's plain string too (console, bench)
        self.recorder.stop(reason, t)
        self._log("stop", reason=reason.value, at=r6(t))
        self._set_state(State.BUFFERING)
        self.indicators.pulse(2)

    def _finished(self, manifest: dict[str, Any]) -> None:
        self.recordings.append(manifest)
        self._log("saved", recording=manifest.get("recording_id"), frames=manifest.get("frames"))

    def _writer_error(self, exc: BaseException) -> None:
        if not isinstance(exc, OSError):
            raise exc  # a bug, not a storage fault: never disguise it as a full card
        self._log("error", what="storage", detail=str(exc))
        self.audit.later("error", self.clock.now(), what="storage", detail=str(exc))
        self.indicators.error(True)
        if self.recorder.active:
            self.recorder.storage_failed(exc)
            self.stop_recording(StopReason.STORAGE_FULL, self.clock.now())
