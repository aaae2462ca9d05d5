// OAuth2 provider presets for add-account: token endpoint, scopes and IMAP server of the
// providers most users have. Microsoft 365 turned off password logins for IMAP; Gmail wants
// OAuth2 (or app passwords). The operator registers an app with the provider (client id and,
// for Google, a client secret) and obtains a refresh token for the mailbox with the scopes
// below; mailroom only ever uses the refresh_token grant (lib/imap/oauth2.ts).

export interface OAuth2Preset {
  label: string;
  /** `{tenant}` is replaced by --tenant (Microsoft). */
  tokenUrl: string;
  scopes: string;
  imapHost: string;
  imapPort: number;
  /** Where the app is registered, for the help text and docs. */
  console: string;
}

export const OAUTH2_PRESETS = {
  google: {
    label: 'Google (Gmail, Google Workspace)',
    tokenUrl: 'https://oauth2.googleapis.com/token',
    // The only scope that grants IMAP access.
    scopes: 'https://mail.google.com/',
    imapHost: 'imap.gmail.com',
    imapPort: 993,
    console: 'Google Cloud console, APIs & Services > Credentials (OAuth client id)',
  },
  microsoft: {
    label: 'Microsoft 365 / Exchange Online (Outlook.com too)',
    tokenUrl: 'https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token',
    // offline_access is what makes the token endpoint return refresh tokens.
    scopes: 'https://outlook.office365.com/IMAP.AccessAsUser.All offline_access',
    imapHost: 'outlook.office365.com',
    imapPort: 993,
    console: 'Microsoft Entra admin center, App registrations (delegated permission IMAP.AccessAsUser.All)',
  },
} as const satisfies Record<string, OAuth2Preset>;

export type OAuth2PresetName = keyof typeof OAUTH2_PRESETS;
export const OAUTH2_PRESET_NAMES = Object.keys(OAUTH2_PRESETS) as OAuth2PresetName[];

/** The token endpoint of a preset; Microsoft's names a tenant ("common", "organizations" or a tenant id). */
export function presetTokenUrl(name: OAuth2PresetName, tenant = 'common'): string {
  if (!/^[A-Za-z0-9.-]+$/.test(tenant))
    throw new Error(`tenant "${tenant}" must be a tenant id, a domain, "common" or "organizations"`);
  return OAUTH2_PRESETS[name].tokenUrl.replace('{tenant}', tenant);
}
