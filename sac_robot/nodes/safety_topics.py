# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The e-stop subscriptions every node that commands a robot makes, and the QoS-mismatch watch on its
safety topics.

DDS connects a publisher and a subscription only when the subscription asks for no more than the publisher
offers: a reliable subscription never hears a best-effort publisher, a transient-local one never hears a
volatile one, and the mismatch is silent. An e-stop must stop the robot from whatever a person uses:
``ros2 topic pub`` and rqt (reliable, volatile), a latched button (reliable, transient-local, possibly raised
before the node started), a radio bridge or a joystick node (best effort). So each e-stop topic is
subscribed three times, one profile per kind of publisher; every publisher matches at least one, and a
reliable publisher always reaches a reliable subscription. One message then arrives up to three (or, with no
namespace, six) times: pressing twice is harmless, and the safety layer ignores a release that comes right
after a press (a late copy of an older release must not undo a newer press; rclpy's EventsExecutor gives no
message info to tell copies apart).

QosWatch turns rclpy's incompatible-QoS events into a WARN log line naming the topic and the policy, and a
``qos_incompatible`` entry in the node's /diagnostics, so an integrator sees a mismatch instead of silence.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSPolicyKind, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Bool, Float64MultiArray

from sac_robot.nodes import ros_io as io

# One subscription per kind of e-stop publisher (see the module docstring).
ESTOP_SUBSCRIPTIONS: tuple[tuple[str, QoSProfile], ...] = (
    # A latched button: its last message, also one sent before this node existed, is delivered on joining.
    (
        "reliable, transient-local",
        QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL),
    ),
    # `ros2 topic pub`, rqt, any create_publisher(Bool, topic, 10): delivered reliably.
    (
        "reliable, volatile",
        QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE),
    ),
    # Radio bridges and joystick nodes on sensor-data QoS; matches every publisher, so it is the one watched.
    (
        "best effort, volatile",
        QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE),
    ),
)


def _ignore(_event: Any) -> None:
    """The stricter e-stop subscriptions do not match some publishers by design: no warning for that."""


def subscribe_estop(node: Node, on_estop: Callable[[bool], None], watch: QosWatch) -> list[Any]:
    """Subscribe the robot's (``sac_robot/estop``, namespaced) and the global (``/sac_robot/estop``) e-stop
    with every profile of ESTOP_SUBSCRIPTIONS; ``on_estop(pressed)`` for each delivery."""

    def deliver(msg: Bool) -> None:
        on_estop(bool(msg.data))

    subscriptions = []
    for topic in (io.ESTOP, io.GLOBAL_ESTOP):
        for i, (_, qos) in enumerate(ESTOP_SUBSCRIPTIONS):
            last = i == len(ESTOP_SUBSCRIPTIONS) - 1
            events = watch.subscription(topic, qos) if last else SubscriptionEventCallbacks(incompatible_qos=_ignore)
            subscriptions.append(node.create_subscription(Bool, topic, deliver, qos, event_callbacks=events))
    return subscriptions


def command_publisher(node: Node, watch: QosWatch, lifecycle: bool = False) -> Any:
    """The joint_commands publisher (COMMAND_QOS), its QoS mismatches watched; a lifecycle publisher for a
    lifecycle node, so nothing is published before activation."""
    create = node.create_lifecycle_publisher if lifecycle else node.create_publisher
    events = watch.publisher(io.JOINT_COMMANDS, io.COMMAND_QOS)
    return create(Float64MultiArray, io.JOINT_COMMANDS, io.COMMAND_QOS, event_callbacks=events)


def latched_estop_publishers(node: Node) -> int:
    """Transient-local publishers on the e-stop topics, as the node's ROS graph knows them now."""
    count = 0
    for topic in (io.ESTOP, io.GLOBAL_ESTOP):
        for info in node.get_publishers_info_by_topic(node.resolve_topic_name(topic)):
            count += info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
    return count


class EstopStartup:
    """Until the safety layer knows the e-stop state, tell it every 50 ms (steady clock) how many latched
    e-stop publishers the graph shows, so the start-up grace lasts until their message has arrived."""

    def __init__(self, node: Node, safety: Any) -> None:
        from rclpy.clock import Clock, ClockType

        self.node, self.safety = node, safety
        safety.listen_for_estop()
        self.timer = node.create_timer(0.05, self.check, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.check()

    def check(self) -> None:
        if self.timer.is_canceled():
            return
        self.safety.note_latched_estop_publishers(latched_estop_publishers(self.node))
        if self.safety.estop_known:
            self.timer.cancel()  # known for good: a latched press from now on arrives like any other


def _policy_name(kind: Any) -> str:
    try:
        return QoSPolicyKind(int(kind)).name
    except (TypeError, ValueError):
        return str(kind)


def _describe(qos: QoSProfile) -> str:
    return f"reliability={qos.reliability.name}, durability={qos.durability.name}"


class QosWatch:
    """Incompatible-QoS events of one node's safety topics, for its log and its /diagnostics."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.seen: dict[str, str] = {}  # resolved topic → what was incompatible, newest last

    def subscription(self, topic: str, qos: QoSProfile) -> SubscriptionEventCallbacks:
        return SubscriptionEventCallbacks(incompatible_qos=partial(self._event, topic, qos, "a publisher"))

    def publisher(self, topic: str, qos: QoSProfile) -> PublisherEventCallbacks:
        return PublisherEventCallbacks(incompatible_qos=partial(self._event, topic, qos, "a subscription"))

    def _event(self, topic: str, qos: QoSProfile, other: str, info: Any) -> None:
        name = self.node.resolve_topic_name(topic)
        policy = _policy_name(info.last_policy_kind)
        self.seen[name] = f"{other} with incompatible {policy} ({info.total_count} so far)"
        self.node.get_logger().warning(
            f"incompatible QoS on {name}: {other} does not match on {policy}, so DDS will not connect them; "
            f"this node uses {_describe(qos)} (docs/topics.md lists every topic's QoS)"
        )

    def diagnostics(self) -> dict[str, str]:
        return {"qos_incompatible": "; ".join(f"{t}: {v}" for t, v in self.seen.items()) or "none"}

    @property
    def level(self) -> int:
        """WARN (1) once any mismatch was seen, else OK (0): a mismatch stays worth a look until restart."""
        return 1 if self.seen else 0
