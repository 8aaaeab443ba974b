// A local S3 server for the tests: node run-s3rver.cjs PORT DIR BUCKET ACCESS_KEY SECRET
// @20minutes/s3rver checks SigV4 signatures (plain s3rver does not). Its built-in S3RVER/S3RVER pair is
// revoked, so that only the pair the test chose signs.
// s3rver 5.0 lacks AbortMultipartUpload (DELETE ?uploadId= answers 405 and the parts stay): it is added here,
// after s3rver's own authentication, as S3 documents it: the upload's parts are removed, 204; an unknown
// upload is 404 NoSuchUpload. The parts are the files DIR/BUCKET/._S3rver_uploads/UPLOAD_ID/N.
const fs = require('node:fs');
const path = require('node:path');
const S3rver = require('@20minutes/s3rver');
const AWSAccount = require('@20minutes/s3rver/lib/models/account');
const S3Error = require('@20minutes/s3rver/lib/models/error');
const router = require('@20minutes/s3rver/lib/routes');
const [port, dir, bucket, key, secret] = process.argv.slice(2);
AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
AWSAccount.DUMMY_ACCOUNT.createKeyPair(key, secret);

const objectDelete = router.stack.find((l) => l.path === '/:bucket/*key' && l.methods.includes('DELETE'));
const deleteObject = objectDelete.stack[objectDelete.stack.length - 1];
objectDelete.stack[objectDelete.stack.length - 1] = async (ctx, next) => {
  if (ctx.params.queryMethod !== 'uploadId')
    return deleteObject(ctx, next);
  const id = ctx.query.uploadId;
  const uploads = ctx.store.getResourcePath(ctx.params.bucket, undefined, 'uploads');
  if (!/^[0-9a-f]+$/.test(id) || !fs.existsSync(path.join(uploads, id)))
    throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: id });
  await fs.promises.rm(path.join(uploads, id), { recursive: true });
  ctx.status = 204;
};

new S3rver({ address: '127.0.0.1', port: +port, directory: dir, silent: true, configureBuckets: [{ name: bucket }] })
  .run().then(({ address, port }) => console.log(`listening ${address}:${port}`));
