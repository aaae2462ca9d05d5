// The environment that points a mailroom worker (lib/config.ts) at the local stack: S3 and
// DynamoDB emulators, the SMTP target as internal mail server and as outbound relay.
export function localStackEnv(s: { s3: string; dynamodb: string; domains: string[]; smtpPort: number; internalSmtpPort: number }): Record<string, string> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: s.s3,
    AWS_ENDPOINT_URL_DYNAMODB: s.dynamodb,
    DOMAINS: s.domains.join(','),
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(s.smtpPort),
    INTERNAL_SMTP_PORT: String(s.internalSmtpPort),
    // Auto-replies and outside forwards go to the same target instead of SES.
    OUTBOUND_TRANSPORT: 'smtp',
    OUTBOUND_SMTP_HOST: '127.0.0.1',
    OUTBOUND_SMTP_PORT: String(s.smtpPort),
  };
}
