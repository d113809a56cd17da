// Names of the flat AdamW moments in a plain (single-file) checkpoint, beside the model's
// parameter names.
export const OPT_M = 'optimizer.exp_avg';
export const OPT_V = 'optimizer.exp_avg_sq';
