# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""Learner node: transitions in, weights out. Training runs in its own thread (LearnerCore).

/sac_robot/transitions  (UInt8MultiArray)   → ingest, exactly once
/sac_robot/episodes     (String, JSON)      → training returns, evaluation rows in progress.csv
/sac_robot/ack          (String, JSON)      ← highest contiguous sequence stored on disk
/sac_robot/policy       (UInt8MultiArray)   ← safetensors weights, transient-local
/diagnostics            (DiagnosticArray)   ← about 1 Hz
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import String, UInt8MultiArray

from sac_robot.core.wire import WireError, decode_transitions, encode_ack, load_key, sign_policy
from sac_robot.nodes import ros_io as io
from sac_robot.nodes.spin import run_node
from sac_robot.robot.deploy_check import pipeline_policy_info
from sac_robot.robot.pipeline import load_job
from sac_robot.training.learner_core import LearnerCore


class LearnerNode(Node):
    def __init__(self) -> None:
        super().__init__("learner")
        config = self.declare_parameter("config", "bipedal_walker").value
        run_dir = self.declare_parameter("run_dir", "runs/train_sim").value
        resume = self.declare_parameter("resume", False).value
        total_steps = self.declare_parameter("total_steps", 0).value  # 0: the config's train.total_steps
        self.flush_period = self.declare_parameter("flush_period_s", 0.5).value
        threads = self.declare_parameter("torch_threads", 0).value  # 0: the config's sac.torch_threads
        job = load_job(config, {"train.total_steps": total_steps} if total_steps > 0 else {})
        cfg, pipe = job.config, job.pipe
        if threads > 0:
            cfg.sac.torch_threads = threads
        elif cfg.sac.torch_threads == 0:
            # Leave two cores to the control loop and the simulator on the same machine.
            cfg.sac.torch_threads = max(1, (os.cpu_count() or 1) - 2)
        self.key = load_key(self.declare_parameter("key_file", "").value or pipe.cfg.security.key_file)
        info = {**pipeline_policy_info(pipe), "config": cfg.model_dump(mode="json")}
        ones = np.ones(pipe.act_dim)
        self.core = LearnerCore(
            None if resume else cfg, Path(run_dir), pipe.obs_dim, pipe.act_dim, -ones, ones, resume, info
        )
        if resume and total_steps > 0:
            self.core.cfg.train.total_steps = total_steps
        self.total_steps = self.core.cfg.train.total_steps
        self.pub_policy = self.create_publisher(UInt8MultiArray, io.POLICY, io.POLICY_QOS)
        self.pub_ack = self.create_publisher(String, io.ACK, io.ACK_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(UInt8MultiArray, io.TRANSITIONS, self.on_transitions, io.TRANSITIONS_QOS)
        self.create_subscription(String, io.EPISODES, self.on_episode, io.EPISODES_QOS)
        self.create_timer(self.flush_period, self.on_flush)
        self.create_timer(1.0, self.on_diagnostics)
        self.create_timer(self.declare_parameter("status_period_s", 10.0).value, self.on_status)
        self.bad_messages = 0
        self.finished = False
        self.core.start(self.publish_policy, pipe.cfg.publish_every_updates)
        self.get_logger().info(f"learner writing {run_dir} ({self.core.buffer.total} transitions stored)")

    def on_transitions(self, msg: UInt8MultiArray) -> None:
        try:
            batch = decode_transitions(bytes(msg.data), self.key)
        except WireError as err:
            self.bad_messages += 1
            self.get_logger().warning(f"transitions rejected: {err}", throttle_duration_sec=1.0)
            return
        result = self.core.ingest(batch)
        if result == "shape":
            self.get_logger().warning(
                f"transitions from {batch.collector_id} have the wrong dimensions", throttle_duration_sec=1.0
            )

    def on_episode(self, msg: String) -> None:
        try:
            self.core.note_episode(json.loads(msg.data))
        except (ValueError, KeyError, TypeError) as err:
            self.bad_messages += 1
            self.get_logger().warning(f"episode message rejected: {err}", throttle_duration_sec=1.0)

    def on_flush(self) -> None:
        """Persist, then acknowledge: every stream's ack also carries the update count (for UTD pacing)."""
        self.core.flush()
        for key, seq in self.core.acked.items():
            cid, epoch = key.rsplit("|", 1)
            ack = encode_ack(cid, int(epoch), seq, self.core.agent.updates, self.core.buffer.total)
            self.pub_ack.publish(String(data=ack))
        if self.core.buffer.total >= self.total_steps and not self.finished:
            self.finished = True
            self.get_logger().info(f"reached {self.total_steps} steps: final checkpoint and policy")
            raise SystemExit(0)

    def publish_policy(self, data: bytes, version: int) -> None:
        msg = UInt8MultiArray()
        msg.data = sign_policy(data, self.core.run_id, version, self.key) if self.key else data
        self.pub_policy.publish(msg)

    def on_diagnostics(self) -> None:
        c = self.core
        values = {
            "transitions_stored": c.buffer.total,
            "updates": c.agent.updates,
            "updates_per_s": f"{c.updates_per_s():.1f}",
            "policy_version": c.policy_version,
            "collectors": len(c.received),
            "rejected_messages": self.bad_messages + sum(c.rejected.values()),
            "rejected_gap": c.rejected["gap"],
            "rejected_duplicate": c.rejected["duplicate"],
            "alpha": f"{c.agent.alpha:.4f}",
            "disk_errors": c.disk_errors,
            "last_disk_error": c.last_disk_error or "none",
        }
        level, message = (2, f"cannot write to disk: {c.last_disk_error}") if c.disk_errors else (0, "training")
        now = self.get_clock().now().nanoseconds * 1e-9
        self.pub_diag.publish(io.diagnostics_msg("sac_robot/learner", "learner", level, message, values, now))

    def on_status(self) -> None:
        """A progress line in the log while training (TensorBoard and progress.csv hold the details)."""
        c = self.core
        ret = f"{np.mean(c.train_returns):.1f}" if c.train_returns else "-"
        self.get_logger().info(
            f"steps {c.buffer.total}/{self.total_steps}  updates {c.agent.updates}  {c.updates_per_s():.0f} upd/s  "
            f"episodes {c.episodes}  train return {ret}  policy v{c.policy_version}"
        )

    def close(self) -> None:
        """Stop training and write the final checkpoint (also on Ctrl-C and SIGTERM)."""
        self.core.stop()
        path = self.core.finish()
        if path is not None:
            self.get_logger().info(f"final checkpoint written; policy at {path}")


def main(args: list[str] | None = None) -> int:
    return run_node(LearnerNode, args)


if __name__ == "__main__":
    sys.exit(main())
