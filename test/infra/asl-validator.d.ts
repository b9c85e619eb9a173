/** Types of `asl-validator` (a CommonJS module exporting one function; the package ships none). */
declare module 'asl-validator' {
  interface ValidationOptions {
    /** Check the JSONPath and intrinsic-function syntax of paths and payload templates. @default true */
    readonly checkPaths?: boolean;
    /** Check that a Task's `Resource` is an ARN. @default true */
    readonly checkArn?: boolean;
  }
  interface ValidationError {
    readonly message?: string;
    readonly 'Error code'?: string;
    readonly Message?: string;
    readonly [key: string]: unknown;
  }
  interface ValidationResult {
    readonly isValid: boolean;
    readonly errors: readonly ValidationError[];
    errorsText(separator?: string): string;
  }
  function aslValidator(definition: unknown, options?: ValidationOptions): ValidationResult;
  export default aslValidator;
}
