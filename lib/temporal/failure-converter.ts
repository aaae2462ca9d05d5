// Loaded by path (DataConverter.failureConverterPath) in workers, clients and the workflow
// bundle: failure messages and stack traces (an SMTP reply naming a recipient, a parse error
// quoting a header) move into an encoded payload, which the codec then encrypts. Deterministic
// and sandbox-safe: @temporalio/common only.
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
