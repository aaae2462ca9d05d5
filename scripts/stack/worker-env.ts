// The environment that points a mailroom worker (lib/config/index.ts) at the local stack: S3 and
// DynamoDB emulators, the SMTP target as internal mail server, and for outbound mail the
// local SES v2 server (`ses`) or else the SMTP target as relay. Everything on loopback.
export function localStackEnv(s: {
  s3: string;
  dynamodb: string;
  domains: string[];
  smtpPort: number;
  internalSmtpPort: number;
  ses?: string;
}): Record<string, string> {
  return {
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: s.s3,
    AWS_ENDPOINT_URL_DYNAMODB: s.dynamodb,
    DOMAINS: s.domains.join(','),
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(s.smtpPort),
    INTERNAL_SMTP_PORT: String(s.internalSmtpPort),
    ...(s.ses
      ? // Auto-replies and outside forwards through the SES v2 API, as in production.
        { OUTBOUND_TRANSPORT: 'ses', AWS_ENDPOINT_URL_SESV2: s.ses }
      : // ... or to the SMTP target as relay (it has no certificate to require TLS with).
        {
          OUTBOUND_TRANSPORT: 'smtp',
          OUTBOUND_SMTP_HOST: '127.0.0.1',
          OUTBOUND_SMTP_PORT: String(s.smtpPort),
          OUTBOUND_SMTP_REQUIRE_TLS: 'false',
        }),
    HEALTH_HOST: '127.0.0.1',
    METRICS_HOST: '127.0.0.1',
  };
}
