// Package natsbus is a fastsse.Bus on NATS JetStream: fastsse groups on
// many instances (processes, machines) share one stream, so that a publish
// on any instance reaches the clients of all of them, in one order, with
// the same ids, and a client resumes on any instance.
//
// One JetStream stream per group, carrying the group's subject alone:
//
//   - Group.Publish stores the event, encoded once for the cluster (without
//     its id line), with a Nats-Msg-Id, so that a publisher's retry within
//     the stream's duplicate window is stored once. Publish retries while
//     NATS is unreachable, up to GroupOptions.PublishTimeout.
//   - Every instance reads the stream with one ordered consumer, however
//     many clients it has, and adds the id line once per instance. The id
//     is the stream's identity (a hash of its name and creation time, 8
//     characters) and the message's stream sequence: "k3x9q2mz-42".
//   - The ordered consumer starts over by itself after a reconnect, a
//     missed heartbeat or a slow consumer, from the last sequence it
//     delivered: the instance catches up from history. Should retention
//     have dropped what it had not delivered, its clients get a lasse-gap
//     event (fastsse.GapEvent).
//   - Resume replays from the instance's ring, or else from the stream's
//     history (see fastsse.NewBusGroup). The stream's sequences are the
//     group's alone, so a client that missed more than the history keeps
//     (Config.MaxMsgs, MaxAge, MaxBytes) is told of the gap, exactly.
//
// Start with New, then fastsse.NewBusGroup.
package natsbus
