// SES bounce and complaint notifications mailed by SNS, as relays deliver them (long JSON
// lines broken, or quoted-printable), written from the SES documentation's examples with our
// own values (test/fixtures/ses-notifications/README.md), and what each must be read as.
import { join } from 'node:path';

const FIXTURES = join(__dirname, '..', 'fixtures', 'ses-notifications');

export const snsFixture = (file: string) => join(FIXTURES, file);

/** What each fixture must read as (test/fixtures/ses-notifications/README.md says how each was broken). */
export const SNS_FIXTURES: {
  file: string;
  type: 'Bounce' | 'Complaint';
  messageId: string;
  destinations: string[];
  recipients: string[];
  subject: string;
  detail?: string;
}[] = [
  {
    file: 'email-bounce-sendmail-folded.eml',
    type: 'Bounce',
    messageId: '0100019ad3f1c2b4-7e2a91c5-3b6d-4f8e-a1c2-5d9e0f7b3a21-000000',
    destinations: ['jane@example.net', 'mary@example.org', 'richard@example.org'],
    recipients: ['jane@example.net'],
    subject: 'Quarterly report: figures for review',
    detail: 'Permanent/General',
  },
  {
    file: 'email-json-complaint-postfix-folded.eml',
    type: 'Complaint',
    messageId: '0100019ad4f83b10-51a2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d-000000',
    destinations: ['richard@example.org'],
    recipients: ['richard@example.org'],
    subject: 'Your invitation: "Planning day" (Tuesday)',
    detail: 'abuse',
  },
  {
    file: 'email-json-bounce-quoted-printable.eml',
    type: 'Bounce',
    messageId: '0100019ad8c19f00-0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d-000000',
    destinations: ['mary@example.org', 'ghost@example.org'],
    recipients: ['mary@example.org', 'ghost@example.org'],
    subject: 'Minutes = decisions + actions',
    detail: 'Permanent/General',
  },
  {
    file: 'email-complaint-event-hard-broken.eml',
    type: 'Complaint',
    messageId: '0100019adeec7a11-8b9c0d1e-2f3a-4b4c-9d5e-6f7a8b9c0d1e-000000',
    destinations: ['jane@example.net'],
    recipients: ['jane@example.net'],
    subject: 'Newsletter — December',
  },
];
