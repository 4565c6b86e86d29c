/**
 * Reservation ids carry what a settle or release needs to find the reservation without asking
 * anyone: the customer, the feature and the credit pool. `rs_` then five base64url parts.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface ReservationRef {
  customerId: string;
  feature: string;
  /** '' when the feature has no credit rate (no credit layer). */
  creditType: string;
  resourceId: string;
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
const unb64 = (text: string) => Buffer.from(text, 'base64url').toString('utf8');

/** 22 characters of a digest of `parts`: stable across processes and versions. */
export function digest(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('base64url').slice(0, 22);
}

export function randomNonce(): string {
  return randomBytes(16).toString('base64url');
}

export function reservationId(ref: ReservationRef, nonce: string): string {
  return `rs_${b64(ref.customerId)}.${b64(ref.feature)}.${b64(ref.creditType)}.${b64(ref.resourceId)}.${nonce}`;
}

export function parseReservationId(id: string): ReservationRef | null {
  if (!id.startsWith('rs_')) return null;
  const parts = id.slice(3).split('.');
  if (parts.length !== 5 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) return null;
  const [customerId, feature, creditType, resourceId, nonce] = parts as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (nonce.length === 0 || customerId.length === 0 || feature.length === 0) return null;
  return {
    customerId: unb64(customerId),
    feature: unb64(feature),
    creditType: unb64(creditType),
    resourceId: unb64(resourceId),
  };
}
