// Requests waiting for a slot, and the ticket protocol that hands them their verdict. The Worker
// holds an admit or poll call open for at most POLL_MS at a time: a gate that restarts (losing its
// in-memory queue) is noticed within one poll, and a Worker that stops polling (client gone, Worker
// dead) is dropped from the queue. A request whose key's first request is queued waits behind it as
// its twin, outside the queue, and shares its fate.
import type { EntrySnapshot } from "./journal-entry";
import type { PlanEntry } from "./plan";
import type { GateHost } from "./ports";
import type { AdmitRequest, AdmitResult } from "./protocol";
import { BoundedPriorityQueue, type OfferResult } from "./queue";

/** Longest an admit or poll call stays open while the request waits in the queue. */
export const POLL_MS = 2_000;
/** A queued ticket nobody polled for this long is dropped; so is a verdict nobody came for. */
export const STALE_TICKET_MS = 3 * POLL_MS;

export interface Waiter {
  request: AdmitRequest;
  plan: PlanEntry[];
  degradations: string[];
  /** Entry to carry on from (a takeover after the previous run stopped mid-way). */
  resumeFrom?: EntrySnapshot;
  enqueuedAt: number;
  /** Tokens charged to the tenant's rate limit (an estimate), when it has one; refunded if the request gets no slot. */
  rateTokens?: number;
}

export interface Ticket extends Waiter {
  /** The verdict, once there is one and no open call took it. */
  result?: AdmitResult;
  /** An admit or poll call is open for it. */
  listening: boolean;
  lastPolledAt: number;
  /** When its wait runs out (limits.maxQueueWaitMs after it arrived). */
  deadline: number;
  /** A twin: the journal key of the queued request it waits behind. */
  behind?: string;
}

/** A queued request with a shared key, and the twins (same key) waiting behind it. */
export interface TwinGroup {
  ticket: Ticket;
  twins: Ticket[];
}

export class TicketBook {
  readonly queue: BoundedPriorityQueue<Ticket>;
  private readonly tickets = new Map<string, Ticket>();
  private readonly groups = new Map<string, TwinGroup>();

  constructor(
    private readonly host: Pick<GateHost, "deliver" | "wakeAt">,
    maxQueue: () => number,
  ) {
    this.queue = new BoundedPriorityQueue<Ticket>(maxQueue);
  }

  has(ticketId: string): boolean {
    return this.tickets.has(ticketId);
  }

  /** The queued request with this shared key, if one is queued. */
  group(key: string): TwinGroup | undefined {
    return this.groups.get(key);
  }

  /** A new ticket for `waiter`, due at `deadline`, not yet in the queue. */
  ticket(waiter: Waiter, deadline: number, now: number): Ticket {
    return { ...waiter, listening: false, lastPolledAt: now, deadline };
  }

  /** Puts the ticket in the queue; a full queue may displace a lower-priority one (returned). */
  enqueue(ticket: Ticket): OfferResult<Ticket> {
    const id = ticket.request.requestId;
    const offered = this.queue.offer({ id, priority: ticket.request.priority, enqueuedAt: ticket.enqueuedAt, value: ticket });
    if (!offered.accepted) return offered;
    this.tickets.set(id, ticket);
    const record = ticket.request.record;
    if (record?.shared) this.groups.set(record.key, { ticket, twins: [] });
    this.host.wakeAt(ticket.deadline);
    return offered;
  }

  /** The ticket waits behind the group's queued request, taking no place in the queue. */
  addTwin(group: TwinGroup, ticket: Ticket): void {
    ticket.behind = group.ticket.request.record!.key;
    group.twins.push(ticket);
    this.tickets.set(ticket.request.requestId, ticket);
    this.host.wakeAt(ticket.deadline);
  }

  /**
   * An admit or poll call for the ticket: its verdict if there is one (the ticket is then done),
   * "queued" while it waits (the call now listens), "unknown" for a ticket the gate does not know.
   */
  listen(ticketId: string, now: number): AdmitResult {
    const ticket = this.tickets.get(ticketId);
    if (!ticket) return { kind: "unknown" };
    ticket.lastPolledAt = now;
    if (ticket.result) {
      this.tickets.delete(ticketId);
      return ticket.result;
    }
    ticket.listening = true;
    return { kind: "queued", ticket: ticketId };
  }

  /** The open call for the ticket ended without a verdict (the Worker polls again, or is gone). */
  stopListening(ticketId: string, now: number): void {
    const ticket = this.tickets.get(ticketId);
    if (!ticket) return;
    ticket.listening = false;
    ticket.lastPolledAt = now;
    this.host.wakeAt(now + STALE_TICKET_MS + 1);
  }

  /** Hands the ticket its verdict: to the open call if there is one, else kept for the next poll. */
  give(ticket: Ticket, result: AdmitResult): void {
    const id = ticket.request.requestId;
    ticket.listening = false;
    if (this.host.deliver(id, result)) this.tickets.delete(id);
    else ticket.result = result;
  }

  /** The twins waiting behind this ticket, which leaves the queue: they need a verdict now. */
  releaseGroup(ticket: Ticket): Ticket[] {
    const key = ticket.request.record?.key;
    const group = key === undefined ? undefined : this.groups.get(key);
    if (!group || group.ticket !== ticket) return [];
    this.groups.delete(key!);
    return group.twins;
  }

  /** Tickets whose wait ran out, taken out of the queue (or from behind their twin). */
  takeDue(now: number): Ticket[] {
    const due: Ticket[] = [];
    for (const ticket of this.tickets.values()) {
      if (ticket.result || ticket.deadline > now) continue;
      const group = ticket.behind === undefined ? undefined : this.groups.get(ticket.behind);
      if (group) group.twins.splice(group.twins.indexOf(ticket), 1);
      else if (!this.queue.remove(ticket.request.requestId)) continue;
      due.push(ticket);
    }
    return due;
  }

  /** Every waiting ticket (queued or a twin), taken out: they all need a verdict now. */
  takeAll(): Ticket[] {
    const waiting = [...this.tickets.values()].filter((t) => !t.result);
    this.queue.removeWhere(() => true);
    this.groups.clear();
    return waiting;
  }

  /** Queued tickets nobody polls any more (their client or Worker is gone), taken out of the queue. */
  takeStale(now: number): Ticket[] {
    const stale = this.queue.removeWhere((e) => !e.value.listening && now - e.value.lastPolledAt > STALE_TICKET_MS).map((e) => e.value);
    for (const ticket of stale) this.tickets.delete(ticket.request.requestId);
    return stale;
  }

  /** Forgets verdicts nobody came for: the Worker that would have polled is gone. */
  forgetUnclaimed(now: number): void {
    for (const [id, ticket] of this.tickets) if (ticket.result && now - ticket.lastPolledAt > STALE_TICKET_MS) this.tickets.delete(id);
  }

  /** When the next ticket's wait runs out, goes stale, or its unclaimed verdict is to be forgotten. */
  nextWake(): number | undefined {
    let next: number | undefined;
    for (const t of this.tickets.values()) {
      const staleAt = t.lastPolledAt + STALE_TICKET_MS + 1;
      const at = t.result ? staleAt : t.listening || t.behind !== undefined ? t.deadline : Math.min(t.deadline, staleAt);
      if (next === undefined || at < next) next = at;
    }
    return next;
  }
}
