// A local S3 server for the tests: node run-s3rver.cjs PORT DIR BUCKET ACCESS_KEY SECRET
// @20minutes/s3rver checks SigV4 signatures (plain s3rver does not). Its built-in S3RVER/S3RVER pair is
// revoked, so that only the pair the test chose signs.
const S3rver = require('@20minutes/s3rver');
const AWSAccount = require('@20minutes/s3rver/lib/models/account');
const [port, dir, bucket, key, secret] = process.argv.slice(2);
AWSAccount.DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
AWSAccount.DUMMY_ACCOUNT.createKeyPair(key, secret);
new S3rver({ address: '127.0.0.1', port: +port, directory: dir, silent: true, configureBuckets: [{ name: bucket }] })
  .run().then(({ address, port }) => console.log(`listening ${address}:${port}`));
